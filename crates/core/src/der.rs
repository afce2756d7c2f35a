//! The few DER structures keys arrive in: SubjectPublicKeyInfo, PKCS#1 RSAPublicKey.
//! A reader that refuses anything it does not understand, and a writer for the same.

/// One DER element: its tag and its content bytes.
struct Element<'a> {
    tag: u8,
    content: &'a [u8],
}

/// Reads DER elements one after another from a byte slice.
pub(crate) struct Reader<'a> {
    input: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Reader { input }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.input.is_empty()
    }

    fn element(&mut self) -> Option<Element<'a>> {
        let (&tag, rest) = self.input.split_first()?;
        let (&first_len, mut rest) = rest.split_first()?;
        let len = if first_len < 0x80 {
            usize::from(first_len)
        } else {
            let count = usize::from(first_len & 0x7f);
            if count == 0 || count > 3 {
                return None;
            }
            let (len_bytes, after) = rest.split_at_checked(count)?;
            rest = after;
            let len = len_bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            if len < 0x80 {
                return None; // not minimal: DER forbids it
            }
            len
        };
        let (content, rest) = rest.split_at_checked(len)?;
        self.input = rest;
        Some(Element { tag, content })
    }

    /// Reads an element that must carry `tag`, returning its content.
    pub(crate) fn expect(&mut self, tag: u8) -> Option<&'a [u8]> {
        let element = self.element()?;
        (element.tag == tag).then_some(element.content)
    }

    /// Reads a positive INTEGER and returns its magnitude without leading zeros.
    pub(crate) fn positive_integer(&mut self) -> Option<&'a [u8]> {
        let bytes = self.expect(INTEGER)?;
        let first = *bytes.first()?;
        if first & 0x80 != 0 {
            return None; // negative
        }
        let trimmed = match bytes.iter().position(|b| *b != 0) {
            Some(start) => bytes.get(start..)?,
            None => return None, // zero
        };
        Some(trimmed)
    }
}

pub(crate) const INTEGER: u8 = 0x02;
pub(crate) const BIT_STRING: u8 = 0x03;
pub(crate) const NULL: u8 = 0x05;
pub(crate) const OID: u8 = 0x06;
pub(crate) const SEQUENCE: u8 = 0x30;

/// Writes a DER element with the given tag and content.
pub(crate) fn write(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = bytes.get(skip..).unwrap_or_default();
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

/// Writes a positive INTEGER from its big-endian magnitude.
pub(crate) fn write_positive_integer(magnitude: &[u8]) -> Vec<u8> {
    let start = magnitude
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(magnitude.len());
    let trimmed = magnitude.get(start..).unwrap_or_default();
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(trimmed);
    write(INTEGER, &content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_integers_and_long_lengths() {
        let big = vec![0xffu8; 300];
        let encoded = write(SEQUENCE, &write_positive_integer(&big));
        let mut outer = Reader::new(&encoded);
        let inner = outer.expect(SEQUENCE).unwrap_or_default();
        assert!(outer.is_empty());
        assert_eq!(Reader::new(inner).positive_integer(), Some(&big[..]));
    }

    #[test]
    fn refuses_truncated_and_non_minimal_lengths() {
        assert!(Reader::new(&[0x30, 0x05, 0x01]).expect(SEQUENCE).is_none());
        assert!(
            Reader::new(&[0x30, 0x81, 0x01, 0x00])
                .expect(SEQUENCE)
                .is_none()
        );
    }
}
