//! A row kept as its bytes, for bulk reads (a tree walk): the text and blob
//! columns of one row checked and copied back to back into one buffer
//! ([`PackedColumns`], built by a [`Packer`]), and a record that is either
//! decoded or still such a row, decoded the first time it is needed
//! ([`Lazy`]), its fields read from the row's bytes until then
//! ([`Lazy::view`]: strings borrowed, lists as [`Strs`], embeddings as
//! [`Floats`]). One allocation a row where a decoded record is a string per
//! field; [`crate::chunks::packed`] and [`crate::trees::packed`] build
//! their rows from these.

use std::sync::OnceLock;

use rusqlite::types::ValueRef;
use serde::de::{DeserializeSeed, SeqAccess, Visitor};

/// What one packed column may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// TEXT, valid UTF-8.
    Text,
    /// NULL or [`Kind::Text`].
    OptText,
    /// NULL or a BLOB of little-endian float32s (a length that is a
    /// multiple of 4): an embedding.
    OptFloats,
}

/// A row's packed byte columns: `K` values back to back in one buffer, and
/// whatever the packer appended after them (its tail).
#[derive(Debug, Clone, PartialEq)]
pub struct PackedColumns<const K: usize> {
    bytes: Box<[u8]>,
    /// Where each value ends in `bytes` (it starts where the one before
    /// ends); the tail starts at the last end.
    ends: [u32; K],
    /// Which values are NULL, one bit each.
    nulls: u16,
}

/// Builds a [`PackedColumns`]: the columns, then a tail.
pub(crate) struct Packer<const K: usize> {
    bytes: Vec<u8>,
    ends: [u32; K],
    nulls: u16,
}

impl<const K: usize> Packer<K> {
    /// Checks and copies `values[c]` for each `(c, kind)` of `columns`,
    /// reserving `tail` bytes more; `None` if a value is not of its kind.
    pub(crate) fn new(
        values: &[ValueRef<'_>],
        columns: &[(usize, Kind); K],
        tail: usize,
    ) -> Option<Packer<K>> {
        const { assert!(K <= 16, "one NULL bit a column in a u16") };
        let mut nulls = 0_u16;
        let mut len = tail;
        for (i, &(column, kind)) in columns.iter().enumerate() {
            len += match (values[column], kind) {
                (ValueRef::Null, Kind::OptText | Kind::OptFloats) => {
                    nulls |= 1 << i;
                    0
                }
                (ValueRef::Blob(b), Kind::OptFloats) if b.len() % 4 == 0 => b.len(),
                (ValueRef::Text(b), Kind::Text | Kind::OptText) => {
                    std::str::from_utf8(b).ok()?;
                    b.len()
                }
                _ => return None,
            };
        }
        let mut bytes = Vec::with_capacity(len);
        let mut ends = [0; K];
        for (end, &(column, _)) in ends.iter_mut().zip(columns) {
            if let ValueRef::Text(b) | ValueRef::Blob(b) = values[column] {
                bytes.extend_from_slice(b);
            }
            *end = u32::try_from(bytes.len()).ok()?;
        }
        Some(Packer { bytes, ends, nulls })
    }

    /// Appends the strings of `json`, a JSON list of strings, to the tail
    /// back to back and says where each ends in it; `None` if `json` is not
    /// such a list (it takes exactly what `Vec<String>` takes). The tail
    /// then holds this one list ([`PackedColumns::list`]).
    pub(crate) fn append_list(&mut self, json: &str) -> Option<Box<[u32]>> {
        let mut ends = Vec::new();
        if json != "[]" {
            let mut parser = serde_json::Deserializer::from_str(json);
            AppendStrs {
                start: self.bytes.len(),
                bytes: &mut self.bytes,
                ends: &mut ends,
            }
            .deserialize(&mut parser)
            .ok()?;
            parser.end().ok()?;
        }
        Some(ends.into_boxed_slice())
    }

    /// Checks and copies the columns as [`Packer::new`] does, then the
    /// strings of `list` as [`Packer::append_list`] does: the packed
    /// columns, and where each string ends ([`PackedColumns::list`]).
    pub(crate) fn with_list(
        values: &[ValueRef<'_>],
        columns: &[(usize, Kind); K],
        list: &str,
    ) -> Option<(PackedColumns<K>, Box<[u32]>)> {
        // The strings are no longer than their JSON. An empty list takes no
        // room: a buffer with room to spare is reallocated when it is boxed.
        let room = if list == "[]" { 0 } else { list.len() };
        let mut packer = Packer::new(values, columns, room)?;
        let ends = packer.append_list(list)?;
        Some((packer.finish()?, ends))
    }

    /// The packed columns; `None` past 4 GiB (ends are 32-bit).
    pub(crate) fn finish(self) -> Option<PackedColumns<K>> {
        u32::try_from(self.bytes.len()).ok()?;
        Some(PackedColumns {
            bytes: self.bytes.into_boxed_slice(),
            ends: self.ends,
            nulls: self.nulls,
        })
    }
}

impl<const K: usize> PackedColumns<K> {
    /// Value `slot`; `None` if NULL.
    pub(crate) fn bytes(&self, slot: usize) -> Option<&[u8]> {
        if self.nulls & (1 << slot) != 0 {
            return None;
        }
        let start = slot.checked_sub(1).map_or(0, |before| self.ends[before]) as usize;
        self.bytes.get(start..self.ends[slot] as usize)
    }

    /// Value `slot` as text ("" if NULL). A text column was checked as
    /// UTF-8 when packed, and the buffer never changes.
    pub(crate) fn text(&self, slot: usize) -> &str {
        as_text(self.bytes(slot).unwrap_or_default())
    }

    /// Value `slot` as owned text, or `None` if NULL.
    pub(crate) fn opt_text(&self, slot: usize) -> Option<String> {
        self.bytes(slot).map(|b| as_text(b).to_owned())
    }

    /// The list [`Packer::append_list`] appended, given where its strings
    /// end.
    pub(crate) fn list<'a>(&'a self, ends: &'a [u32]) -> Strs<'a> {
        Strs::Packed {
            bytes: self.tail(),
            ends,
        }
    }

    /// What the packer appended after the columns.
    pub(crate) fn tail(&self) -> &[u8] {
        let start = self.ends.last().map_or(0, |&end| end as usize);
        self.bytes.get(start..).unwrap_or_default()
    }
}

/// Bytes checked as UTF-8 when packed ("" if they are not, which cannot
/// happen).
pub(crate) fn as_text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

/// An embedding as a record holds it (floats) or as its row does (the
/// little-endian float32 blob, its length checked when packed).
#[derive(Debug, Clone, Copy)]
pub enum Floats<'a> {
    /// Decoded.
    Floats(&'a [f32]),
    /// As stored.
    Blob(&'a [u8]),
}

impl Floats<'_> {
    /// How many values.
    pub fn len(&self) -> usize {
        match self {
            Floats::Floats(f) => f.len(),
            Floats::Blob(b) => b.len() / 4,
        }
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Value `i` (0.0 past the end, which no caller reads).
    fn get(&self, i: usize) -> f32 {
        match *self {
            Floats::Floats(f) => f.get(i).copied().unwrap_or_default(),
            Floats::Blob(b) => b
                .get(4 * i..4 * i + 4)
                .map_or(0.0, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        }
    }

    /// The values, in order. Its length is known, so a Python tuple is
    /// filled from it with no list in between.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = f32> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

/// Equal when the values are, however each is held.
impl PartialEq for Floats<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

/// A list of strings as a record holds it (a `String` each) or as a packed
/// row does (back to back in one buffer, with where each ends): read
/// without building the list.
#[derive(Debug, Clone, Copy)]
pub enum Strs<'a> {
    /// Decoded.
    Strings(&'a [String]),
    /// Packed: string `i` ends at `ends[i]` in `bytes` and starts where
    /// the one before it ends. Checked as UTF-8 when packed.
    Packed {
        /// The strings, back to back.
        bytes: &'a [u8],
        /// Where each ends.
        ends: &'a [u32],
    },
}

impl<'a> Strs<'a> {
    /// How many strings.
    pub fn len(&self) -> usize {
        match self {
            Strs::Strings(strings) => strings.len(),
            Strs::Packed { ends, .. } => ends.len(),
        }
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// String `i`.
    pub fn get(&self, i: usize) -> Option<&'a str> {
        match *self {
            Strs::Strings(strings) => strings.get(i).map(String::as_str),
            Strs::Packed { bytes, ends } => {
                let end = *ends.get(i)? as usize;
                let start = i.checked_sub(1).map_or(0, |before| ends[before] as usize);
                Some(as_text(bytes.get(start..end)?))
            }
        }
    }

    /// The strings, copied.
    pub fn to_vec(self) -> Vec<String> {
        self.iter().map(str::to_owned).collect()
    }

    /// The strings, in order.
    pub fn iter(self) -> impl DoubleEndedIterator<Item = &'a str> + ExactSizeIterator {
        (0..self.len()).map(move |i| self.get(i).unwrap_or_default())
    }
}

/// Equal when the strings are, however each list is held.
impl PartialEq for Strs<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

/// A JSON list of strings, each appended to `bytes` with its end (counted
/// from `start`) in `ends`: one buffer for all the strings where `Vec<String>`
/// is one each. It takes exactly what `Vec<String>` takes.
struct AppendStrs<'a> {
    start: usize,
    bytes: &'a mut Vec<u8>,
    ends: &'a mut Vec<u32>,
}

impl<'de> DeserializeSeed<'de> for AppendStrs<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for AppendStrs<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a list of strings")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(AppendStr(self.bytes))?.is_some() {
            let end = u32::try_from(self.bytes.len() - self.start)
                .map_err(|_| serde::de::Error::custom("a list past 4 GiB"))?;
            self.ends.push(end);
        }
        Ok(())
    }
}

/// One string of the list, appended.
struct AppendStr<'a>(&'a mut Vec<u8>);

impl<'de> DeserializeSeed<'de> for AppendStr<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for AppendStr<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        self.0.extend_from_slice(v.as_bytes());
        Ok(())
    }
}

/// A row kept as its bytes: it has an id, unpacks into its record, and
/// lends its other fields without unpacking ([`Unpack::View`]).
pub trait Unpack {
    /// The decoded record.
    type Record: Clone + std::fmt::Debug + PartialEq;
    /// The record's fields other than its id, borrowed from the row's bytes
    /// or from a decoded record alike.
    type View<'a>
    where
        Self: 'a;
    /// The record, decoded.
    fn unpack(&self) -> Self::Record;
    /// The fields, read from the row's bytes: nothing is decoded.
    fn view(&self) -> Self::View<'_>;
    /// The fields of a decoded record.
    fn record_view(record: &Self::Record) -> Self::View<'_>;
    /// The record's id, read without unpacking.
    fn id(&self) -> &str;
    /// The id of a decoded record.
    fn record_id(record: &Self::Record) -> &str;
}

/// A record, or the packed row it is decoded from the first time it is
/// needed (then kept). Both are boxed or small, so that the value stays
/// small: it is what a Python `Chunk` or `Summary` holds, and every new
/// object is zeroed over its whole size.
#[derive(Debug, Clone)]
pub enum Lazy<P: Unpack> {
    /// A record built or read whole.
    Decoded(Box<P::Record>),
    /// A row a bulk read packed, and its record once decoded.
    Packed(P, OnceLock<Box<P::Record>>),
}

impl<P: Unpack> Lazy<P> {
    /// A decoded record.
    pub fn decoded(record: P::Record) -> Self {
        Lazy::Decoded(Box::new(record))
    }

    /// A packed row, not decoded yet.
    pub fn packed(packed: P) -> Self {
        Lazy::Packed(packed, OnceLock::new())
    }

    /// The record (decoded now if it is still the row's bytes).
    pub fn record(&self) -> &P::Record {
        match self {
            Lazy::Decoded(record) => record,
            Lazy::Packed(packed, decoded) => decoded.get_or_init(|| Box::new(packed.unpack())),
        }
    }

    /// The fields, borrowed: from the record once it is decoded, else
    /// straight from the row's bytes, so that reading one field (a walked
    /// node's `content`) decodes nothing else.
    pub fn view(&self) -> P::View<'_> {
        match self {
            Lazy::Decoded(record) => P::record_view(record),
            Lazy::Packed(packed, decoded) => decoded
                .get()
                .map_or_else(|| packed.view(), |record| P::record_view(record)),
        }
    }

    /// The id, without decoding a packed row.
    pub fn id(&self) -> &str {
        match self {
            Lazy::Decoded(record) => P::record_id(record),
            Lazy::Packed(packed, _) => packed.id(),
        }
    }
}

/// Equal when the records are: a packed row is decoded to compare.
impl<P: Unpack> PartialEq for Lazy<P> {
    fn eq(&self, other: &Self) -> bool {
        self.record() == other.record()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: [(usize, Kind); 3] = [(0, Kind::Text), (1, Kind::OptText), (3, Kind::OptFloats)];

    #[test]
    fn columns_and_a_tail_pack_into_one_buffer() {
        let values = [
            ValueRef::Text("é😀".as_bytes()),
            ValueRef::Null,
            ValueRef::Integer(5),
            ValueRef::Blob(&[0, 0, 128, 63]),
        ];
        let list = r#"["ab", "c"]"#;
        let mut packer = Packer::new(&values, &COLUMNS, list.len()).expect("packs");
        let ends = packer.append_list(list).expect("a list of strings");
        let packed = packer.finish().expect("small");
        assert_eq!(
            (&ends[..], packed.list(&ends).to_vec()),
            (&[2, 3][..], vec!["ab".to_owned(), "c".to_owned()])
        );
        assert_eq!(packed.text(0), "é😀");
        assert_eq!(
            (packed.bytes(1), packed.opt_text(1), packed.text(1)),
            (None, None, "")
        );
        assert_eq!(packed.bytes(2), Some(&[0, 0, 128, 63][..]));
        assert_eq!(packed.tail(), b"abc");
        let empty = [
            ValueRef::Text(b""),
            ValueRef::Text(b""),
            ValueRef::Null,
            ValueRef::Null,
        ];
        let packed = Packer::new(&empty, &COLUMNS, 0)
            .and_then(Packer::finish)
            .expect("packs");
        assert_eq!(
            (packed.bytes(0), packed.opt_text(1), packed.tail()),
            (Some(&[][..]), Some(String::new()), &[][..])
        );
    }

    #[test]
    fn packed_strings_and_floats_read_and_compare_as_decoded_ones() {
        let strings = ["é".to_owned(), String::new(), "\0😀".to_owned()];
        let packed = Strs::Packed {
            bytes: "é\0😀".as_bytes(),
            ends: &[2, 2, 7],
        };
        assert_eq!(packed.len(), 3);
        assert_eq!(
            (packed.get(0), packed.get(1), packed.get(2)),
            (Some("é"), Some(""), Some("\0😀"))
        );
        assert_eq!(packed.get(3), None);
        assert!(packed.iter().rev().eq(strings.iter().rev()));
        assert_eq!(packed, Strs::Strings(&strings));
        assert_ne!(packed, Strs::Strings(&strings[..2]));
        assert_ne!(Strs::Strings(&strings[1..]), Strs::Strings(&strings[..2]));
        let empty = Strs::Packed {
            bytes: &[],
            ends: &[],
        };
        assert!(empty.is_empty() && empty == Strs::Strings(&[]));
        let blob = [0, 0, 128, 63, 0, 0, 0, 192];
        assert!(Floats::Blob(&blob).iter().eq([1.0, -2.0]));
        assert_eq!(Floats::Blob(&blob), Floats::Floats(&[1.0, -2.0]));
        assert_ne!(Floats::Blob(&blob), Floats::Floats(&[1.0]));
        assert_ne!(Floats::Blob(&blob[..4]), Floats::Floats(&[2.0]));
    }

    #[test]
    fn a_list_is_appended_as_vec_string_reads_it() {
        for json in [
            r#"[]"#,
            r#"[ ]"#,
            r#"["a","\u00e9\"",""]"#,
            "{}",
            "[1]",
            r#"["a"] x"#,
            "[",
            "null",
        ] {
            let mut packer = Packer::new(&[], &[], 0).expect("no columns");
            let appended = packer.append_list(json);
            let packed = packer.finish().expect("small");
            let read = serde_json::from_str::<Vec<String>>(json).ok();
            assert_eq!(
                appended.map(|ends| packed.list(&ends).to_vec()),
                read,
                "{json}"
            );
        }
    }

    #[test]
    fn a_value_not_of_its_kind_is_not_packed() {
        let good = [
            ValueRef::Text(b"a"),
            ValueRef::Text(b"b"),
            ValueRef::Null,
            ValueRef::Null,
        ];
        assert!(Packer::new(&good, &COLUMNS, 0).is_some());
        for (column, bad) in [
            (0, ValueRef::Null),
            (0, ValueRef::Blob(b"a")),
            (0, ValueRef::Text(b"\xff")),
            (1, ValueRef::Integer(1)),
            (1, ValueRef::Text(b"\xc3")),
            (3, ValueRef::Blob(&[0; 5])),
            (3, ValueRef::Text(b"")),
            (3, ValueRef::Real(1.0)),
        ] {
            let mut values = good;
            values[column] = bad;
            assert!(
                Packer::new(&values, &COLUMNS, 0).is_none(),
                "{column}: {bad:?}"
            );
        }
    }
}
