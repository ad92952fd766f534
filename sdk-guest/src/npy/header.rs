//! The `.npy` header: a Python dict literal such as
//! `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.

use std::fmt;

use super::Error;

/// The three keys of a `.npy` header.
#[derive(Debug, PartialEq)]
pub(super) struct Header {
    /// The dtype, e.g. `<f4`.
    pub(super) descr: String,
    /// Whether the data is column-major.
    pub(super) fortran_order: bool,
    /// The dimensions; empty for a 0-d array.
    pub(super) shape: Vec<usize>,
}

/// A value in the header dict.
enum Value {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Str(s) => write!(f, "the string '{s}'"),
            Self::Bool(b) => write!(f, "{}", if *b { "True" } else { "False" }),
            Self::Tuple(t) => write!(f, "the tuple {t:?}"),
        }
    }
}

/// Parses the header dict, e.g. `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.
pub(super) fn parse_header(text: &str) -> Result<Header, Error> {
    let mut p = Parser { text, pos: 0 };
    let (mut descr, mut fortran_order, mut shape) = (None, None, None);
    p.expect('{')?;
    loop {
        if p.eat('}') {
            break;
        }
        let key = p.string()?;
        p.expect(':')?;
        let value = p.value()?;
        match (key.as_str(), value) {
            ("descr", Value::Str(s)) => descr = Some(s),
            ("fortran_order", Value::Bool(b)) => fortran_order = Some(b),
            ("shape", Value::Tuple(t)) => shape = Some(t),
            ("descr" | "fortran_order" | "shape", value) => {
                return Err(Error::Header(format!("'{key}' is {value}")));
            }
            _ => {}
        }
        if !p.eat(',') {
            p.expect('}')?;
            break;
        }
    }
    if !p.rest().trim().is_empty() {
        return Err(p.error("text after the closing '}'"));
    }
    let missing = |key| Error::Header(format!("no '{key}' key"));
    Ok(Header {
        descr: descr.ok_or_else(|| missing("descr"))?,
        fortran_order: fortran_order.ok_or_else(|| missing("fortran_order"))?,
        shape: shape.ok_or_else(|| missing("shape"))?,
    })
}

/// A cursor over the header text, skipping whitespace between tokens.
struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    fn skip_space(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn error(&self, what: &str) -> Error {
        Error::Header(format!(
            "{what} at byte {} of {:?}",
            self.pos,
            self.text.trim_end()
        ))
    }

    /// Consumes `c` (after whitespace) if it is next.
    fn eat(&mut self, c: char) -> bool {
        self.skip_space();
        if self.rest().starts_with(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), Error> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.error(&format!("expected '{c}'")))
        }
    }

    /// A Python string literal in single or double quotes (no escapes: dtype names need none).
    fn string(&mut self) -> Result<String, Error> {
        self.skip_space();
        let Some(quote) = self
            .rest()
            .chars()
            .next()
            .filter(|c| matches!(c, '\'' | '"'))
        else {
            return Err(self.error("expected a quoted string"));
        };
        let body = &self.rest()[1..];
        let end = body
            .find(quote)
            .ok_or_else(|| self.error("unterminated string"))?;
        let s = body[..end].to_owned();
        self.pos += end + 2;
        Ok(s)
    }

    /// A string, `True`/`False`, or a tuple of non-negative integers.
    fn value(&mut self) -> Result<Value, Error> {
        self.skip_space();
        let rest = self.rest();
        if rest.starts_with(['\'', '"']) {
            return self.string().map(Value::Str);
        }
        for (word, b) in [("True", true), ("False", false)] {
            if rest.starts_with(word) {
                self.pos += word.len();
                return Ok(Value::Bool(b));
            }
        }
        if rest.starts_with('[') {
            return Err(self.error("structured dtypes (a list of fields) are not supported"));
        }
        if !self.eat('(') {
            return Err(self.error("expected a string, True, False or a tuple"));
        }
        let mut dims = Vec::new();
        loop {
            if self.eat(')') {
                return Ok(Value::Tuple(dims));
            }
            dims.push(self.dimension()?);
            if !self.eat(',') {
                self.expect(')')?;
                return Ok(Value::Tuple(dims));
            }
        }
    }

    /// A non-negative decimal integer, with Python 2's optional `L` suffix.
    fn dimension(&mut self) -> Result<usize, Error> {
        self.skip_space();
        let digits = self.rest().len()
            - self
                .rest()
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .len();
        if digits == 0 {
            return Err(self.error("expected a non-negative integer dimension"));
        }
        let n = self.rest()[..digits]
            .parse()
            .map_err(|_| self.error("dimension too large"))?;
        self.pos += digits;
        self.eat('L');
        Ok(n)
    }
}
