//! An image's embedded ICC profile to sRGB.
//!
//! TikTok shows photos as sRGB, and a JPEG without a profile is read as
//! sRGB everywhere. Phones and editors often store other spaces: iPhone
//! JPEGs and PNGs carry Display P3, camera exports AdobeRGB. Copying those
//! numbers into an untagged JPEG as they are shifts every colour (P3 reds
//! and greens come out dull, AdobeRGB greens look washed out), so the
//! pixels are transformed from the embedded profile to sRGB with `moxcms`,
//! the pure-Rust colour management that `image` itself depends on, and the
//! JPEG is written without a profile (sRGB is the default).
//!
//! The transform runs on the image after it has been fitted to TikTok's
//! 1080 × 1920 box: it costs a few milliseconds there instead of tens on a
//! 12 MP original. Flattening and resizing happen before, in the source
//! space; both keep white white and a resample of gamma-encoded values is
//! what the pipeline does for sRGB inputs too, so the order changes nothing
//! visible. Decoding gives no other choice for 16-bit inputs either: the
//! profile is applied to the 8-bit result.
//!
//! A profile that cannot be used (malformed, CMYK on an image the decoder
//! already turned into RGB, a grey profile on a colour image) is ignored and
//! said so in [`Colour::ProfileIgnored`]: the photo is still posted as
//! stored rather than refused, as a broken EXIF block is.

use std::sync::Arc;

use moxcms::{
    CicpColorPrimaries, CicpProfile, ColorProfile, DataColorSpace, Layout, MatrixCoefficients,
    ParsingOptions, ProfileText, RenderingIntent, TransferCharacteristics, Transform8BitExecutor,
    TransformOptions,
};

/// What was done about the input's colour space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Colour {
    /// No embedded profile: the pixels are taken as sRGB, as every viewer does.
    NoProfile,
    /// The embedded profile is sRGB (it maps every probe colour to itself
    /// within rounding), so nothing was changed.
    Srgb,
    /// The pixels were transformed from the embedded profile to sRGB.
    ConvertedToSrgb {
        /// The profile's description, as its author named it (may be empty).
        profile: String,
    },
    /// The profile was present but not used; the pixels are as stored.
    ProfileIgnored {
        /// Why, for logs.
        reason: String,
    },
}

/// Channels of the pixels the decoder produced, which the profile must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceChannels {
    /// Grey (with or without alpha).
    Grey,
    /// RGB (with or without alpha), including CMYK JPEGs, which the decoder
    /// turns into RGB before a profile could be applied.
    Rgb,
}

/// A ready transform from the embedded profile to sRGB.
pub struct ToSrgb {
    executor: Arc<Transform8BitExecutor>,
    channels: SourceChannels,
    profile: String,
}

/// What to do with the pixels: nothing (and why), or a transform.
pub enum ColourPlan {
    /// Leave the pixels as they are; the value says why.
    Keep(Colour),
    /// Transform them with [`ToSrgb::apply`].
    Transform(ToSrgb),
}

/// Largest profile parsed. Matrix profiles are under 4 KB and printer LUT
/// profiles under 1 MB; moxcms's own ceiling is 10 MB, more than a photo
/// ever carries and more memory per worker than it should cost.
const MAX_PROFILE_BYTES: usize = 2 * 1024 * 1024;
/// Largest colour lookup table parsed (in entries); 1 M entries keeps a
/// hostile profile from allocating hundreds of megabytes.
const MAX_CLUT_ENTRIES: usize = 1_000_000;
/// Largest tone curve parsed (in entries): 4096 is the usual maximum.
const MAX_TRC_ENTRIES: usize = 65_536;

/// Decides what to do with pixels of `channels` described by `icc` (the
/// decoder's embedded profile, if any).
///
/// An sRGB profile is detected by what it does, not by its name: the
/// transform is built and a grid of colours is sent through it; when each
/// comes back within one level, the image is left untouched (no rounding
/// drift, no work). That catches every sRGB variant (v2 tables, v4
/// parametric curves, vendors' copies) whatever it is called.
pub fn plan(icc: Option<&[u8]>, channels: SourceChannels) -> ColourPlan {
    let Some(icc) = icc.filter(|bytes| !bytes.is_empty()) else {
        return ColourPlan::Keep(Colour::NoProfile);
    };
    let ignored = |reason: String| ColourPlan::Keep(Colour::ProfileIgnored { reason });
    if icc.len() > MAX_PROFILE_BYTES {
        return ignored(format!(
            "the embedded ICC profile is {} bytes, more than the {MAX_PROFILE_BYTES} read",
            icc.len()
        ));
    }
    let options = ParsingOptions {
        max_profile_size: MAX_PROFILE_BYTES + 1,
        max_allowed_clut_size: MAX_CLUT_ENTRIES,
        max_allowed_trc_size: MAX_TRC_ENTRIES,
    };
    let source = match ColorProfile::new_from_slice_with_options(icc, options) {
        Ok(profile) => profile,
        Err(error) => return ignored(format!("the embedded ICC profile is unreadable: {error}")),
    };
    plan_profile(&source, channels)
}

/// Decides what to do with pixels described by H.273 code points (a HEIF
/// `nclx` box) rather than an ICC profile: the profile they stand for is
/// built and planned like an embedded one. HDR transfers (PQ, HLG) are not
/// tone-mapped here: the photo keeps its stored values, and says so.
pub fn plan_cicp(primaries: u16, transfer: u16) -> ColourPlan {
    let ignored = |reason: String| ColourPlan::Keep(Colour::ProfileIgnored { reason });
    if matches!(transfer, 16 | 18) {
        return ignored(format!(
            "HDR transfer characteristics {transfer} (PQ or HLG) are not tone-mapped; \
             the photo keeps its stored values"
        ));
    }
    let code = |v: u16| u8::try_from(v).unwrap_or(u8::MAX);
    let (Ok(color_primaries), Ok(transfer_characteristics)) = (
        CicpColorPrimaries::try_from(code(primaries)),
        TransferCharacteristics::try_from(code(transfer)),
    ) else {
        return ignored(format!(
            "colour code points {primaries}/{transfer} are not known here"
        ));
    };
    let source = ColorProfile::new_from_cicp(CicpProfile {
        color_primaries,
        transfer_characteristics,
        matrix_coefficients: MatrixCoefficients::Identity,
        full_range: true,
    });
    if source.red_trc.is_none() {
        return ignored(format!(
            "colour code points {primaries}/{transfer} describe no RGB space"
        ));
    }
    plan_profile(&source, SourceChannels::Rgb)
}

/// Plans the transform of `channels` pixels from `source` to sRGB.
fn plan_profile(source: &ColorProfile, channels: SourceChannels) -> ColourPlan {
    let ignored = |reason: String| ColourPlan::Keep(Colour::ProfileIgnored { reason });
    let layout = match (source.color_space, channels) {
        (DataColorSpace::Rgb, SourceChannels::Rgb) => Layout::Rgb,
        (DataColorSpace::Gray, SourceChannels::Grey) => Layout::Gray,
        (space, _) => {
            return ignored(format!(
                "the embedded ICC profile is for {space:?} data, but the image decodes to {channels:?}"
            ));
        }
    };
    let srgb = ColorProfile::new_srgb();
    // Perceptual is the intent for photographs; for the matrix profiles
    // cameras and phones embed, every intent is the same clipping transform.
    let transform_options = TransformOptions {
        rendering_intent: RenderingIntent::Perceptual,
        ..TransformOptions::default()
    };
    let executor = match source.create_transform_8bit(layout, &srgb, Layout::Rgb, transform_options)
    {
        Ok(executor) => executor,
        Err(error) => {
            return ignored(format!(
                "the embedded ICC profile cannot be converted to sRGB: {error}"
            ));
        }
    };
    let to_srgb = ToSrgb {
        executor,
        channels,
        profile: description(source),
    };
    match to_srgb.is_identity() {
        Ok(true) => ColourPlan::Keep(Colour::Srgb),
        Ok(false) => ColourPlan::Transform(to_srgb),
        Err(error) => ignored(format!(
            "the embedded ICC profile could not be applied: {error}"
        )),
    }
}

/// Levels per channel in the identity probe: 0, 17, 34, ... 255.
const PROBE_STEP: usize = 17;

impl ToSrgb {
    /// Transforms packed 8-bit RGB pixels (grey images arrive as RGB with
    /// equal channels, as the flattening step made them) to sRGB.
    pub fn apply(&self, rgb: &[u8]) -> Result<Vec<u8>, String> {
        let mut out = vec![0u8; rgb.len()];
        match self.channels {
            SourceChannels::Rgb => self
                .executor
                .transform(rgb, &mut out)
                .map_err(|e| e.to_string())?,
            SourceChannels::Grey => {
                // The grey profile describes one channel: send the first of
                // each (equal) triple.
                let grey: Vec<u8> = rgb.chunks_exact(3).map(|px| px[0]).collect();
                self.executor
                    .transform(&grey, &mut out)
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(out)
    }

    /// What the result should report.
    pub fn outcome(&self) -> Colour {
        Colour::ConvertedToSrgb {
            profile: self.profile.clone(),
        }
    }

    /// Whether the transform leaves every probe colour within one level.
    fn is_identity(&self) -> Result<bool, String> {
        let levels: Vec<u8> = (0..=255u8).step_by(PROBE_STEP).collect();
        let probe: Vec<u8> = match self.channels {
            SourceChannels::Rgb => {
                let mut probe = Vec::with_capacity(levels.len().pow(3) * 3);
                for &r in &levels {
                    for &g in &levels {
                        for &b in &levels {
                            probe.extend_from_slice(&[r, g, b]);
                        }
                    }
                }
                probe
            }
            SourceChannels::Grey => (0..=255u8).flat_map(|v| [v, v, v]).collect(),
        };
        let out = self.apply(&probe)?;
        Ok(probe.iter().zip(&out).all(|(&a, &b)| a.abs_diff(b) <= 1))
    }
}

/// The profile's description in whatever form it was stored.
fn description(profile: &ColorProfile) -> String {
    match &profile.description {
        Some(ProfileText::PlainString(text)) => text.clone(),
        Some(ProfileText::Localizable(strings)) => {
            strings.first().map(|s| s.value.clone()).unwrap_or_default()
        }
        Some(ProfileText::Description(text)) => text.ascii_string.clone(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(profile: &ColorProfile) -> Vec<u8> {
        profile.encode().expect("moxcms writes its own profiles")
    }

    #[test]
    fn no_profile_and_empty_profile_keep_the_pixels() {
        assert!(matches!(
            plan(None, SourceChannels::Rgb),
            ColourPlan::Keep(Colour::NoProfile)
        ));
        assert!(matches!(
            plan(Some(&[]), SourceChannels::Rgb),
            ColourPlan::Keep(Colour::NoProfile)
        ));
    }

    #[test]
    fn srgb_profile_is_recognised_by_what_it_does() {
        let icc = encoded(&ColorProfile::new_srgb());
        assert!(matches!(
            plan(Some(&icc), SourceChannels::Rgb),
            ColourPlan::Keep(Colour::Srgb)
        ));
    }

    #[test]
    fn display_p3_and_adobe_rgb_are_transformed() {
        for profile in [
            ColorProfile::new_display_p3(),
            ColorProfile::new_adobe_rgb(),
        ] {
            let icc = encoded(&profile);
            let ColourPlan::Transform(to_srgb) = plan(Some(&icc), SourceChannels::Rgb) else {
                panic!("a wide-gamut profile must be transformed");
            };
            // A mid-saturated pink inside both gamuts moves by more than
            // JPEG noise when it is re-expressed in sRGB.
            let out = to_srgb.apply(&[200, 80, 100, 128, 128, 128]).unwrap();
            let moved = [200u8, 80, 100]
                .iter()
                .zip(&out[..3])
                .map(|(a, b)| a.abs_diff(*b))
                .max()
                .unwrap_or(0);
            assert!(moved >= 5, "{out:?}");
            // Neutral grey stays neutral (both are D65 spaces).
            assert!(
                out[3].abs_diff(out[4]) <= 1 && out[4].abs_diff(out[5]) <= 1,
                "{out:?}"
            );
        }
    }

    #[test]
    fn unusable_profiles_are_ignored_with_a_reason() {
        let Colour::ProfileIgnored { reason } = keep(plan(
            Some(b"not a profile at all, just text"),
            SourceChannels::Rgb,
        )) else {
            panic!("garbage must be ignored");
        };
        assert!(reason.contains("unreadable"), "{reason}");

        let grey = encoded(&ColorProfile::new_gray_with_gamma(2.2));
        let Colour::ProfileIgnored { reason } = keep(plan(Some(&grey), SourceChannels::Rgb)) else {
            panic!("a grey profile on RGB data must be ignored");
        };
        assert!(reason.contains("Gray"), "{reason}");

        let huge = vec![0u8; MAX_PROFILE_BYTES + 1];
        assert!(matches!(
            keep(plan(Some(&huge), SourceChannels::Rgb)),
            Colour::ProfileIgnored { .. }
        ));
    }

    #[test]
    fn grey_profile_on_grey_pixels_is_applied_per_pixel() {
        // Gamma 1.0 (linear) grey: mid-grey 128 is 0.5 linear, which sRGB
        // encodes as about 188.
        let icc = encoded(&ColorProfile::new_gray_with_gamma(1.0));
        let ColourPlan::Transform(to_srgb) = plan(Some(&icc), SourceChannels::Grey) else {
            panic!("a linear grey profile is not sRGB");
        };
        let out = to_srgb.apply(&[128, 128, 128, 0, 0, 0]).unwrap();
        assert_eq!(out.len(), 6);
        for &value in &out[..3] {
            assert!(value.abs_diff(188) <= 2, "{out:?}");
        }
        assert_eq!(&out[3..], &[0, 0, 0]);
    }

    fn keep(plan: ColourPlan) -> Colour {
        match plan {
            ColourPlan::Keep(colour) => colour,
            ColourPlan::Transform(t) => {
                panic!("expected no transform, got one for {:?}", t.profile)
            }
        }
    }
}
