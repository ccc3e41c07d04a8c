//! Structured reading of fuzz input: NUL-separated text fields and single bytes, so a corpus
//! file stays readable (`printf 'a\0b'`) and the fuzzer can still mutate every field.

/// A cursor over the input bytes. Reads past the end yield empty fields and zero bytes, so a
/// target never has to handle "too short".
pub(crate) struct Input<'a> {
    rest: &'a [u8],
}

impl<'a> Input<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Input { rest: data }
    }

    /// The next byte (0 once exhausted).
    pub(crate) fn byte(&mut self) -> u8 {
        match self.rest.split_first() {
            Some((b, rest)) => {
                self.rest = rest;
                *b
            }
            None => 0,
        }
    }

    /// The bytes up to the next NUL (or the end), consumed with the NUL.
    pub(crate) fn field_bytes(&mut self) -> &'a [u8] {
        match self.rest.iter().position(|b| *b == 0) {
            Some(i) => {
                let (field, rest) = self.rest.split_at(i);
                self.rest = &rest[1..];
                field
            }
            None => std::mem::take(&mut self.rest),
        }
    }

    /// The next field as text (invalid UTF-8 replaced by U+FFFD).
    pub(crate) fn field(&mut self) -> String {
        String::from_utf8_lossy(self.field_bytes()).into_owned()
    }

    /// Whatever is left.
    pub(crate) fn rest(self) -> &'a [u8] {
        self.rest
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }
}
