//! HEIF files assembled from HEVC images that libheif's `heif-enc` encoded.
//!
//! Debian's `heif-enc` (libheif 1.15) writes one plain image per file: no
//! grid, no rotation, no depth or gain map. Phones write more: a grid of
//! 512 × 512 tiles with a Display P3 profile, `irot`, an EXIF orientation, a
//! thumbnail and auxiliary images. [`Heif`] takes the coded tiles out of
//! `heif-enc` files ([`Coded::from_heif`]) and lays them out that way, so the
//! HEVC data comes from a real encoder (x265) and the container is the shape
//! phones write. It can also write what a decoder must refuse clearly: an
//! image coded with AVC, JPEG, VVC or uncompressed (`unci`).

use crate::boxes::{self, Body};

/// One coded image: its decoder configuration box and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coded {
    /// Item type: `hvc1`, or what a test swaps in (`avc1`, `jpeg`, ...).
    pub item_type: [u8; 4],
    /// The whole configuration property box (`hvcC`, `avcC`, ...), if any.
    pub config: Option<Vec<u8>>,
    pub data: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

impl Coded {
    /// The primary image of a single-image HEIF file such as `heif-enc`
    /// writes (its `hvcC`, `ispe` and the bytes `iloc` points at).
    pub fn from_heif(file: &[u8]) -> Coded {
        let meta = boxes::child(file, b"meta").expect("a meta box").body;
        let meta = &meta[4..];
        let pitm = boxes::child(meta, b"pitm").expect("pitm").body;
        let primary = u32::from(u16::from_be_bytes([pitm[4], pitm[5]]));
        let (offset, length) =
            iloc_extent(boxes::child(meta, b"iloc").expect("iloc").body, primary);
        let ipco =
            boxes::child(boxes::child(meta, b"iprp").expect("iprp").body, b"ipco").expect("ipco");
        let mut config = None;
        let mut size = (0, 0);
        for property in boxes::children(ipco.body) {
            let whole = &ipco.body[property.start..property.start + 8 + property.body.len()];
            match &property.kind {
                b"hvcC" if config.is_none() => config = Some(whole.to_vec()),
                b"ispe" => {
                    let b = property.body;
                    size = (
                        u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
                        u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
                    );
                }
                _ => {}
            }
        }
        Coded {
            item_type: *b"hvc1",
            config,
            data: file[offset..offset + length].to_vec(),
            width: size.0,
            height: size.1,
        }
    }
}

/// Offset and length of `item`'s single extent in an `iloc` body (versions
/// 0 and 1, construction method 0, as `heif-enc` writes).
fn iloc_extent(body: &[u8], item: u32) -> (usize, usize) {
    let version = body[0];
    let sizes = body[4];
    let (offset_size, length_size) = (usize::from(sizes >> 4), usize::from(sizes & 15));
    let base_size = usize::from(body[5] >> 4);
    let index_size = if version >= 1 {
        usize::from(body[5] & 15)
    } else {
        0
    };
    let read = |at: &mut usize, n: usize| -> usize {
        let mut v = 0usize;
        for i in 0..n {
            v = (v << 8) | usize::from(body[*at + i]);
        }
        *at += n;
        v
    };
    let mut at = 6;
    let count = read(&mut at, 2);
    for _ in 0..count {
        let id = read(&mut at, 2);
        if version >= 1 {
            at += 2;
        }
        at += 2; // data reference index
        let base = read(&mut at, base_size);
        let extents = read(&mut at, 2);
        let mut found = None;
        for _ in 0..extents {
            at += index_size;
            let offset = read(&mut at, offset_size);
            let length = read(&mut at, length_size);
            found.get_or_insert((base + offset, length));
        }
        if id == item as usize {
            return found.expect("an extent");
        }
    }
    panic!("item {item} not in iloc");
}

/// What the primary image is.
#[derive(Debug, Clone)]
pub enum Primary {
    /// One coded image.
    Single(Coded),
    /// A grid of coded tiles, row by row, cropped to the output size.
    Grid {
        tiles: Vec<Coded>,
        columns: u8,
        rows: u8,
        width: u32,
        height: u32,
    },
}

/// A HEIF file to write, phone style.
#[derive(Debug, Clone)]
pub struct Heif {
    pub primary: Primary,
    /// An ICC profile (`colr` of type `prof`) on the primary image.
    pub icc: Option<Vec<u8>>,
    /// `irot`: anticlockwise quarter turns applied for display.
    pub rotation: u8,
    /// `imir`: 0 mirrors about the vertical axis (left-right), 1 about the
    /// horizontal one.
    pub mirror: Option<u8>,
    /// An `Exif` item with this orientation tag, described by the primary.
    pub exif_orientation: Option<u16>,
    /// A `thmb` item for the primary.
    pub thumbnail: Option<Coded>,
    /// Auxiliary images of the primary (depth, HDR gain map, ...): the
    /// `auxC` URN and the coded image.
    pub auxiliary: Vec<(String, Coded)>,
}

/// `auxC` type of Apple's HDR gain map.
pub const GAIN_MAP_URN: &str = "urn:com:apple:photo:2020:aux:hdrgainmap";
/// `auxC` type of a depth map.
pub const DEPTH_URN: &str = "urn:mpeg:hevc:2015:auxid:2";

impl Heif {
    /// A plain file around one coded image.
    pub fn single(image: Coded) -> Heif {
        Heif {
            primary: Primary::Single(image),
            icc: None,
            rotation: 0,
            mirror: None,
            exif_orientation: None,
            thumbnail: None,
            auxiliary: Vec::new(),
        }
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut layout = Layout::default();
        let primary_id = 1u16;
        let mut next_id = 2u16;
        let mut primary_props = Vec::new();
        match &self.primary {
            Primary::Single(image) => {
                primary_props = layout.coded_props(image);
                layout.item(
                    primary_id,
                    image.item_type,
                    false,
                    Data::Mdat(image.data.clone()),
                );
            }
            Primary::Grid {
                tiles,
                columns,
                rows,
                width,
                height,
            } => {
                let descriptor = Body::new()
                    .u8(0)
                    .u8(0)
                    .u8(rows - 1)
                    .u8(columns - 1)
                    .u16(u16::try_from(*width).expect("16-bit grid size"))
                    .u16(u16::try_from(*height).expect("16-bit grid size"))
                    .done();
                layout.item(primary_id, *b"grid", false, Data::Idat(descriptor));
                primary_props.push(layout.property(ispe(*width, *height), false));
                let mut tile_ids = Vec::new();
                for tile in tiles {
                    let id = next_id;
                    next_id += 1;
                    let props = layout.coded_props(tile);
                    layout.item(id, tile.item_type, true, Data::Mdat(tile.data.clone()));
                    layout.associate(id, props);
                    tile_ids.push(id);
                }
                layout.reference(*b"dimg", primary_id, tile_ids);
            }
        }
        if let Some(icc) = &self.icc {
            let colr = boxes::plain(b"colr", &[b"prof".as_slice(), icc].concat());
            primary_props.push(layout.property(colr, false));
        }
        if !self.rotation.is_multiple_of(4) {
            primary_props.push(layout.property(boxes::plain(b"irot", &[self.rotation % 4]), true));
        }
        if let Some(axis) = self.mirror {
            primary_props.push(layout.property(boxes::plain(b"imir", &[axis & 1]), true));
        }
        layout.associate(primary_id, primary_props);

        if let Some(thumbnail) = &self.thumbnail {
            let id = next_id;
            next_id += 1;
            let props = layout.coded_props(thumbnail);
            layout.item(
                id,
                thumbnail.item_type,
                false,
                Data::Mdat(thumbnail.data.clone()),
            );
            layout.associate(id, props);
            layout.reference(*b"thmb", id, vec![primary_id]);
        }
        for (urn, image) in &self.auxiliary {
            let id = next_id;
            next_id += 1;
            let mut props = layout.coded_props(image);
            let mut urn_bytes = urn.as_bytes().to_vec();
            urn_bytes.push(0);
            props.push(layout.property(boxes::full(b"auxC", 0, 0, &urn_bytes), true));
            layout.item(id, image.item_type, true, Data::Mdat(image.data.clone()));
            layout.associate(id, props);
            layout.reference(*b"auxl", id, vec![primary_id]);
        }
        if let Some(orientation) = self.exif_orientation {
            let id = next_id;
            layout.item(id, *b"Exif", true, Data::Mdat(exif_item(orientation)));
            layout.reference(*b"cdsc", id, vec![primary_id]);
        }
        layout.write(primary_id)
    }
}

fn ispe(width: u32, height: u32) -> Vec<u8> {
    boxes::full(b"ispe", 0, 0, &Body::new().u32(width).u32(height).done())
}

/// A HEIF `Exif` item: the offset of the TIFF header, then an EXIF block
/// with one IFD entry, the orientation.
fn exif_item(orientation: u16) -> Vec<u8> {
    Body::new()
        .u32(6)
        .bytes(b"Exif\0\0")
        .bytes(b"MM\0\x2a")
        .u32(8)
        .u16(1)
        .u16(0x0112)
        .u16(3)
        .u32(1)
        .u16(orientation)
        .u16(0)
        .u32(0)
        .done()
}

enum Data {
    Mdat(Vec<u8>),
    Idat(Vec<u8>),
}

struct Item {
    id: u16,
    kind: [u8; 4],
    hidden: bool,
    data: Data,
}

#[derive(Default)]
struct Layout {
    items: Vec<Item>,
    properties: Vec<Vec<u8>>,
    associations: Vec<(u16, Vec<(u8, bool)>)>,
    references: Vec<([u8; 4], u16, Vec<u16>)>,
}

impl Layout {
    fn item(&mut self, id: u16, kind: [u8; 4], hidden: bool, data: Data) {
        self.items.push(Item {
            id,
            kind,
            hidden,
            data,
        });
    }

    /// Adds a property (once: identical boxes are shared) and returns its
    /// 1-based index with the essential flag.
    fn property(&mut self, bytes: Vec<u8>, essential: bool) -> (u8, bool) {
        let index = match self.properties.iter().position(|p| *p == bytes) {
            Some(i) => i,
            None => {
                self.properties.push(bytes);
                self.properties.len() - 1
            }
        };
        (
            u8::try_from(index + 1).expect("under 128 properties"),
            essential,
        )
    }

    fn coded_props(&mut self, image: &Coded) -> Vec<(u8, bool)> {
        let mut props = Vec::new();
        if let Some(config) = &image.config {
            props.push(self.property(config.clone(), true));
        }
        props.push(self.property(ispe(image.width, image.height), false));
        props
    }

    fn associate(&mut self, id: u16, props: Vec<(u8, bool)>) {
        self.associations.push((id, props));
    }

    fn reference(&mut self, kind: [u8; 4], from: u16, to: Vec<u16>) {
        self.references.push((kind, from, to));
    }

    fn meta(&self, mdat_data_start: u32) -> Vec<u8> {
        let hdlr = boxes::full(
            b"hdlr",
            0,
            0,
            &Body::new().u32(0).bytes(b"pict").zeros(12).u8(0).done(),
        );
        let pitm = boxes::full(b"pitm", 0, 0, &1u16.to_be_bytes());
        let mut infes = Vec::new();
        for item in &self.items {
            let body = Body::new()
                .u16(item.id)
                .u16(0)
                .bytes(&item.kind)
                .u8(0)
                .done();
            infes.push(boxes::full(b"infe", 2, u32::from(item.hidden), &body));
        }
        let iinf = boxes::full(
            b"iinf",
            0,
            0,
            &[
                u16::try_from(infes.len())
                    .unwrap_or(0)
                    .to_be_bytes()
                    .to_vec(),
                infes.concat(),
            ]
            .concat(),
        );
        // iloc version 1: construction method per item; 4-byte offsets and
        // lengths, no base offset.
        let mut iloc = Body::new()
            .u8(0x44)
            .u8(0x00)
            .u16(u16::try_from(self.items.len()).unwrap_or(0));
        let mut mdat_offset = mdat_data_start;
        let mut idat_offset = 0u32;
        for item in &self.items {
            let (method, offset, len) = match &item.data {
                Data::Mdat(d) => {
                    let at = mdat_offset;
                    mdat_offset += d.len() as u32;
                    (0u16, at, d.len() as u32)
                }
                Data::Idat(d) => {
                    let at = idat_offset;
                    idat_offset += d.len() as u32;
                    (1u16, at, d.len() as u32)
                }
            };
            iloc = iloc
                .u16(item.id)
                .u16(method)
                .u16(0)
                .u16(1)
                .u32(offset)
                .u32(len);
        }
        let iloc = boxes::full(b"iloc", 1, 0, &iloc.done());
        let ipco = boxes::container(b"ipco", &self.properties);
        let mut ipma = Body::new().u32(self.associations.len() as u32);
        for (id, props) in &self.associations {
            ipma = ipma.u16(*id).u8(props.len() as u8);
            for (index, essential) in props {
                ipma = ipma.u8(index | if *essential { 0x80 } else { 0 });
            }
        }
        let ipma = boxes::full(b"ipma", 0, 0, &ipma.done());
        let iprp = boxes::container(b"iprp", &[ipco, ipma]);
        let mut refs = Vec::new();
        for (kind, from, to) in &self.references {
            let mut body = Body::new().u16(*from).u16(to.len() as u16);
            for id in to {
                body = body.u16(*id);
            }
            refs.push(boxes::plain(kind, &body.done()));
        }
        let iref = boxes::full(b"iref", 0, 0, &refs.concat());
        let idat: Vec<u8> = self
            .items
            .iter()
            .filter_map(|i| match &i.data {
                Data::Idat(d) => Some(d.as_slice()),
                Data::Mdat(_) => None,
            })
            .collect::<Vec<_>>()
            .concat();
        let mut children = vec![hdlr, pitm, iloc, iinf, iref, iprp];
        if !idat.is_empty() {
            children.push(boxes::plain(b"idat", &idat));
        }
        boxes::full(b"meta", 0, 0, &children.concat())
    }

    fn write(&self, _primary: u16) -> Vec<u8> {
        let ftyp = boxes::ftyp(
            b"heic",
            &[b"mif1", b"MiHE", b"MiPr", b"miaf", b"MiHB", b"heic"],
        );
        // The meta box's size does not depend on the offsets it holds.
        let meta_len = self.meta(0).len();
        let data_start = u32::try_from(ftyp.len() + meta_len + 8).expect("small file");
        let meta = self.meta(data_start);
        let mdat: Vec<u8> = self
            .items
            .iter()
            .filter_map(|i| match &i.data {
                Data::Mdat(d) => Some(d.as_slice()),
                Data::Idat(_) => None,
            })
            .collect::<Vec<_>>()
            .concat();
        [ftyp, meta, boxes::plain(b"mdat", &mdat)].concat()
    }
}

/// One of the committed tiles (`heic/tile8-*` or `heic/tile10-*`).
pub fn tile(bit_depth: u8, row: u32, col: u32) -> Coded {
    Coded::from_heif(&crate::fixture(&format!(
        "heic/tile{bit_depth}-{row}-{col}.heic"
    )))
}

/// An iPhone-style portrait photo: the 2048 × 1536 stored picture of the
/// fixtures (the upright [`crate::picture::scene`] of 1536 × 2048 turned a
/// quarter anticlockwise) as a 4 × 3 grid of 512 × 512 tiles cropped to
/// 2000 × 1500, tagged Display P3, with `irot` 3 to show it upright, the
/// EXIF orientation 6 an iPhone also writes, a thumbnail, an HDR gain map
/// and a depth map. `bit_depth` is 8 or 10.
pub fn iphone_grid(bit_depth: u8) -> Heif {
    let tiles = (0..3)
        .flat_map(|row| (0..4).map(move |col| (row, col)))
        .map(|(row, col)| tile(bit_depth, row, col))
        .collect();
    let thumbnail = Coded::from_heif(&crate::fixture("heic/thumb.heic"));
    Heif {
        primary: Primary::Grid {
            tiles,
            columns: 4,
            rows: 3,
            width: 2000,
            height: 1500,
        },
        icc: Some(crate::picture::display_p3_icc()),
        rotation: 3,
        mirror: None,
        exif_orientation: Some(6),
        auxiliary: vec![
            (GAIN_MAP_URN.to_string(), thumbnail.clone()),
            (DEPTH_URN.to_string(), thumbnail.clone()),
        ],
        thumbnail: Some(thumbnail),
    }
}
