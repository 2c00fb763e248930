//! Writes as data: an item's key, a condition on its attributes and an
//! update of them, rendered into DynamoDB's expression strings in one place.
//!
//! Stores say what a write sets, removes and requires; [`Update::render`]
//! turns that into `SET …`/`REMOVE …`, a condition expression and the
//! placeholder maps (every attribute name goes through a `#n` placeholder,
//! so reserved words such as `status` and `state` need no care). Because a
//! write is plain data, the rules that decide it can be pure functions,
//! tested without a table.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::{PK, SK};

/// The primary key of one item.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// The partition key (`pk`).
    pub pk: String,
    /// The sort key (`sk`).
    pub sk: String,
}

impl Key {
    /// The key `pk` / `sk`.
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
        }
    }

    /// The key as the SDK takes it.
    pub fn attributes(&self) -> HashMap<String, AttributeValue> {
        HashMap::from([
            (PK.to_owned(), AttributeValue::S(self.pk.clone())),
            (SK.to_owned(), AttributeValue::S(self.sk.clone())),
        ])
    }
}

/// A condition on one item's attributes.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// The attribute is there (for the key attribute: the item exists).
    Exists(String),
    /// The attribute is not there (for the key attribute: no such item).
    Absent(String),
    /// The attribute equals the value.
    Eq(String, AttributeValue),
    /// The attribute is there and differs from the value.
    Ne(String, AttributeValue),
    /// The attribute is below the value.
    Lt(String, AttributeValue),
    /// The attribute is at most the value.
    Le(String, AttributeValue),
    /// The attribute (a list, string or set) has this many elements.
    SizeEq(String, u64),
    /// The condition does not hold (true for a comparison with an
    /// attribute that is missing, unlike [`Cond::Ne`]).
    Not(Box<Cond>),
    /// All of them hold.
    All(Vec<Cond>),
    /// At least one holds.
    Any(Vec<Cond>),
}

impl Cond {
    /// `attr` is there.
    pub fn exists(attr: &str) -> Self {
        Self::Exists(attr.to_owned())
    }

    /// `attr` is not there.
    pub fn absent(attr: &str) -> Self {
        Self::Absent(attr.to_owned())
    }

    /// The item exists.
    pub fn item_exists() -> Self {
        Self::exists(PK)
    }

    /// The item does not exist.
    pub fn no_item() -> Self {
        Self::absent(PK)
    }

    /// `attr = value`.
    pub fn eq(attr: &str, value: AttributeValue) -> Self {
        Self::Eq(attr.to_owned(), value)
    }

    /// `attr <> value` (false when the attribute is missing).
    pub fn ne(attr: &str, value: AttributeValue) -> Self {
        Self::Ne(attr.to_owned(), value)
    }

    /// `attr < value`.
    pub fn lt(attr: &str, value: AttributeValue) -> Self {
        Self::Lt(attr.to_owned(), value)
    }

    /// `attr <= value`.
    pub fn le(attr: &str, value: AttributeValue) -> Self {
        Self::Le(attr.to_owned(), value)
    }

    /// `size(attr) = count`.
    pub fn size_eq(attr: &str, count: u64) -> Self {
        Self::SizeEq(attr.to_owned(), count)
    }

    /// This and `other`.
    pub fn and(self, other: Cond) -> Self {
        match self {
            Self::All(mut all) => {
                all.push(other);
                Self::All(all)
            }
            first => Self::All(vec![first, other]),
        }
    }

    /// This or `other`.
    pub fn or(self, other: Cond) -> Self {
        match self {
            Self::Any(mut any) => {
                any.push(other);
                Self::Any(any)
            }
            first => Self::Any(vec![first, other]),
        }
    }

    /// Whether `part` is this condition or one of the conditions it requires
    /// all of: for tests of rules that build conditions.
    pub fn requires(&self, part: &Cond) -> bool {
        match self {
            Self::All(all) => all.iter().any(|c| c.requires(part)),
            other => other == part,
        }
    }

    fn render(&self, p: &mut Placeholders) -> String {
        match self {
            Self::Exists(attr) => format!("attribute_exists({})", p.name(attr)),
            Self::Absent(attr) => format!("attribute_not_exists({})", p.name(attr)),
            Self::Eq(attr, v) => format!("{} = {}", p.name(attr), p.value(v.clone())),
            Self::Ne(attr, v) => format!("{} <> {}", p.name(attr), p.value(v.clone())),
            Self::Lt(attr, v) => format!("{} < {}", p.name(attr), p.value(v.clone())),
            Self::Le(attr, v) => format!("{} <= {}", p.name(attr), p.value(v.clone())),
            Self::SizeEq(attr, count) => {
                let count = AttributeValue::N(count.to_string());
                format!("size({}) = {}", p.name(attr), p.value(count))
            }
            Self::Not(inner) => format!("(NOT {})", inner.render(p)),
            Self::All(all) => join(all, " AND ", p),
            Self::Any(any) => join(any, " OR ", p),
        }
    }
}

/// `!cond`: the condition does not hold.
impl std::ops::Not for Cond {
    type Output = Cond;

    fn not(self) -> Cond {
        Cond::Not(Box::new(self))
    }
}

fn join(parts: &[Cond], with: &str, p: &mut Placeholders) -> String {
    let rendered: Vec<String> = parts.iter().map(|c| c.render(p)).collect();
    if rendered.len() == 1 {
        rendered.into_iter().next().unwrap_or_default()
    } else {
        format!("({})", rendered.join(with))
    }
}

/// What an update does to one attribute.
#[derive(Debug, Clone, PartialEq)]
enum Change {
    Set(AttributeValue),
    /// Set only when the attribute is not there yet (`if_not_exists`).
    SetIfAbsent(AttributeValue),
    Remove,
    /// Added to a number (`ADD`; a missing attribute counts as 0).
    Add(AttributeValue),
}

/// An update of one item: attributes set and removed, and the condition it
/// is made on. Later changes of the same attribute replace earlier ones.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Update {
    changes: Vec<(String, Change)>,
    condition: Option<Cond>,
}

impl Update {
    /// An update that changes nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `attr` to `value`.
    pub fn set(self, attr: &str, value: AttributeValue) -> Self {
        self.change(attr, Change::Set(value))
    }

    /// Sets `attr` to `value` unless the item has it already.
    pub fn set_if_absent(self, attr: &str, value: AttributeValue) -> Self {
        self.change(attr, Change::SetIfAbsent(value))
    }

    /// Sets `attr` when `value` is given, else removes it.
    pub fn set_or_remove(self, attr: &str, value: Option<AttributeValue>) -> Self {
        match value {
            Some(value) => self.set(attr, value),
            None => self.remove(attr),
        }
    }

    /// Removes `attr`.
    pub fn remove(self, attr: &str) -> Self {
        self.change(attr, Change::Remove)
    }

    /// Adds `count` to the number `attr` (0 when missing), as one atomic
    /// step: counters that concurrent writers bump.
    pub fn add(self, attr: &str, count: i64) -> Self {
        self.change(attr, Change::Add(AttributeValue::N(count.to_string())))
    }

    /// Makes the update conditional on `cond` too.
    pub fn when(mut self, cond: Cond) -> Self {
        self.condition = Some(match self.condition.take() {
            Some(before) => before.and(cond),
            None => cond,
        });
        self
    }

    fn change(mut self, attr: &str, change: Change) -> Self {
        self.changes.retain(|(a, _)| a != attr);
        self.changes.push((attr.to_owned(), change));
        self
    }

    /// The value the update sets `attr` to, if it sets it.
    pub fn sets(&self, attr: &str) -> Option<&AttributeValue> {
        self.changes.iter().find_map(|(a, c)| match c {
            Change::Set(v) | Change::SetIfAbsent(v) if a == attr => Some(v),
            _ => None,
        })
    }

    /// Whether the update removes `attr`.
    pub fn removes(&self, attr: &str) -> bool {
        self.changes
            .iter()
            .any(|(a, c)| a == attr && *c == Change::Remove)
    }

    /// What must hold for the update to be made.
    pub fn condition(&self) -> Option<&Cond> {
        self.condition.as_ref()
    }

    /// The expressions and placeholder maps DynamoDB takes.
    pub fn render(&self) -> Rendered {
        let mut p = Placeholders::default();
        let mut set = Vec::new();
        let mut remove = Vec::new();
        let mut add = Vec::new();
        for (attr, change) in &self.changes {
            let name = p.name(attr);
            match change {
                Change::Set(v) => set.push(format!("{name} = {}", p.value(v.clone()))),
                Change::SetIfAbsent(v) => {
                    set.push(format!(
                        "{name} = if_not_exists({name}, {})",
                        p.value(v.clone())
                    ));
                }
                Change::Remove => remove.push(name),
                Change::Add(v) => add.push(format!("{name} {}", p.value(v.clone()))),
            }
        }
        let mut expression = String::new();
        if !set.is_empty() {
            expression.push_str(&format!("SET {}", set.join(", ")));
        }
        for (clause, parts) in [("REMOVE", &remove), ("ADD", &add)] {
            if parts.is_empty() {
                continue;
            }
            if !expression.is_empty() {
                expression.push(' ');
            }
            expression.push_str(&format!("{clause} {}", parts.join(", ")));
        }
        let condition = self.condition.as_ref().map(|c| c.render(&mut p));
        Rendered {
            expression,
            condition,
            names: p.names,
            values: p.values,
        }
    }
}

/// A condition alone, rendered (for puts, deletes and condition checks).
pub(super) fn render_condition(cond: &Cond) -> Rendered {
    let mut p = Placeholders::default();
    let condition = Some(cond.render(&mut p));
    Rendered {
        expression: String::new(),
        condition,
        names: p.names,
        values: p.values,
    }
}

/// An update or condition as DynamoDB takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// `SET …`/`REMOVE …`; empty for a condition alone.
    pub expression: String,
    /// The condition expression, if any.
    pub condition: Option<String>,
    /// `#n…` placeholders to attribute names.
    pub names: HashMap<String, String>,
    /// `:v…` placeholders to values.
    pub values: HashMap<String, AttributeValue>,
}

/// Placeholders handed out while rendering: one `#n` per attribute name,
/// one `:v` per value.
#[derive(Default)]
struct Placeholders {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Placeholders {
    fn name(&mut self, attr: &str) -> String {
        if let Some((placeholder, _)) = self.names.iter().find(|(_, a)| *a == attr) {
            return placeholder.clone();
        }
        let placeholder = format!("#n{}", self.names.len());
        self.names.insert(placeholder.clone(), attr.to_owned());
        placeholder
    }

    fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.to_owned())
    }

    /// Puts the placeholders back, so a test reads the expression DynamoDB
    /// evaluates.
    fn plain(text: &str, r: &Rendered) -> String {
        let mut out = text.to_owned();
        let mut names: Vec<_> = r.names.iter().collect();
        names.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        for (placeholder, name) in names {
            out = out.replace(placeholder.as_str(), name);
        }
        let mut values: Vec<_> = r.values.iter().collect();
        values.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        for (placeholder, value) in values {
            let shown = match value {
                AttributeValue::S(v) => format!("'{v}'"),
                AttributeValue::N(v) => v.clone(),
                other => format!("{other:?}"),
            };
            out = out.replace(placeholder.as_str(), &shown);
        }
        out
    }

    #[test]
    fn an_update_renders_sets_removes_and_its_condition() {
        let update = Update::new()
            .set("status", s("uploading"))
            .set_if_absent("created_at", s("t0"))
            .remove("upload_url")
            .when(Cond::eq("status", s("claimed")))
            .when(Cond::absent("publish_id").or(Cond::eq("publish_id", s("p"))));
        let r = update.render();
        assert_eq!(
            plain(&r.expression, &r),
            "SET status = 'uploading', created_at = if_not_exists(created_at, 't0') REMOVE upload_url"
        );
        assert_eq!(
            plain(r.condition.as_deref().unwrap(), &r),
            "(status = 'claimed' AND (attribute_not_exists(publish_id) OR publish_id = 'p'))"
        );
        // One placeholder per name, however often it is used.
        assert_eq!(r.names.values().filter(|n| *n == "status").count(), 1);
        assert!(update.removes("upload_url") && !update.removes("status"));
        assert_eq!(update.sets("status"), Some(&s("uploading")));
        assert!(
            update
                .condition()
                .unwrap()
                .requires(&Cond::eq("status", s("claimed")))
        );
    }

    #[test]
    fn counters_are_added_to_after_sets_and_removes() {
        let update = Update::new()
            .add("link_version", 1)
            .set("updated_at", AttributeValue::N("5".into()))
            .remove("note")
            .when(Cond::item_exists());
        let r = update.render();
        assert_eq!(
            plain(&r.expression, &r),
            "SET updated_at = 5 REMOVE note ADD link_version 1"
        );
        assert_eq!(update.sets("link_version"), None, "an add is not a set");
        let alone = Update::new().add("n", -2).render();
        assert_eq!(plain(&alone.expression, &alone), "ADD n -2");
    }

    #[test]
    fn a_later_change_of_an_attribute_replaces_the_earlier_one() {
        let update = Update::new().remove("a").set("a", s("x"));
        assert!(!update.removes("a"));
        assert_eq!(update.render().expression, "SET #n0 = :v0");
        let removed = Update::new().set_or_remove("b", None);
        assert_eq!(removed.render().expression, "REMOVE #n0");
    }

    #[test]
    fn conditions_alone_render_with_sizes_and_comparisons() {
        let cond = Cond::no_item()
            .or(Cond::le("next_offset", AttributeValue::N("5".into())))
            .and(Cond::size_eq("post_ids", 0))
            .and(Cond::ne("attention", s("n")))
            .and(!Cond::eq("note", s("m")))
            .and(Cond::lt("expires_at", AttributeValue::N("9".into())));
        let r = render_condition(&cond);
        assert_eq!(
            plain(r.condition.as_deref().unwrap(), &r),
            "((attribute_not_exists(pk) OR next_offset <= 5) AND size(post_ids) = 0 AND attention <> 'n' AND (NOT note = 'm') AND expires_at < 9)"
        );
    }
}
