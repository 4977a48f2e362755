//! Tokens of the spec language, each with its line and column (1-based).

use super::SpecError;

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// A possibly dotted name: `conv1`, `layer1.0.conv1`, `F.relu`.
    Name(String),
    Int(i64),
    Float(f64),
    Str(String),
    /// One of `( ) [ ] , = : + * - .`, or `/` for `//` (integer division).
    Punct(char),
    /// `...` (every remaining axis, in an index).
    Ellipsis,
    Newline,
    Eof,
}

impl Tok {
    pub fn describe(&self) -> String {
        match self {
            Tok::Name(n) => format!("name '{n}'"),
            Tok::Int(i) => format!("number {i}"),
            Tok::Float(f) => format!("number {f}"),
            Tok::Str(s) => format!("string '{s}'"),
            Tok::Punct('/') => "'//'".into(),
            Tok::Punct(c) => format!("'{c}'"),
            Tok::Ellipsis => "'...'".into(),
            Tok::Newline => "end of line".into(),
            Tok::Eof => "end of file".into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub line: usize,
    pub col: usize,
}

/// Splits `text` into tokens. Newlines inside brackets are skipped (so a call may span lines),
/// `#` starts a comment, indentation is not significant. A name takes its dots with it
/// (`layer1.0.conv1`, `x.permute`); a dot after a bracket is a `'.'` of its own
/// (`x.permute(0, 2, 1).reshape(...)`).
pub fn tokenize(text: &str, file: &str) -> Result<Vec<Token>, SpecError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line, mut col, mut depth) = (0, 1, 1, 0usize);
    let err = |line, col, message: String| SpecError {
        file: file.to_string(),
        line,
        col,
        message,
    };
    while i < chars.len() {
        let c = chars[i];
        let (start_line, start_col) = (line, col);
        let mut push = |tok| {
            out.push(Token {
                tok,
                line: start_line,
                col: start_col,
            })
        };
        if c == '\n' {
            if depth == 0 {
                push(Tok::Newline);
            }
            i += 1;
            line += 1;
            col = 1;
            continue;
        }
        if c.is_whitespace() {
            i += 1;
            col += 1;
            continue;
        }
        if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        let begin = i;
        if c.is_ascii_alphabetic() || c == '_' {
            i += 1;
            // After a dot, a component may hold '-' between two digits, as module names
            // do that torch builds with add_module (torchvision's RegNet: `block1-0`).
            let mut after_dot = false;
            loop {
                let word = |i: usize| {
                    chars
                        .get(i)
                        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
                };
                let digit = |i: usize| chars.get(i).is_some_and(char::is_ascii_digit);
                while word(i)
                    || (after_dot && chars.get(i) == Some(&'-') && digit(i - 1) && digit(i + 1))
                {
                    i += 1;
                }
                let dotted = i + 1 < chars.len() && chars[i] == '.' && word(i + 1);
                if !dotted {
                    break;
                }
                after_dot = true;
                i += 1;
            }
            push(Tok::Name(chars[begin..i].iter().collect()));
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let mut float = false;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if i < chars.len() && chars[i] == '.' {
                float = true;
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                float = true;
                i += 1;
                if i < chars.len() && (chars[i] == '+' || chars[i] == '-') {
                    i += 1;
                }
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            let s: String = chars[begin..i].iter().collect();
            let bad = || err(start_line, start_col, format!("malformed number '{s}'"));
            push(if float {
                Tok::Float(s.parse().map_err(|_| bad())?)
            } else {
                Tok::Int(s.parse().map_err(|_| bad())?)
            });
        } else if c == '\'' || c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != c && chars[i] != '\n' {
                i += 1;
            }
            if i >= chars.len() || chars[i] != c {
                return Err(err(start_line, start_col, "unterminated string".into()));
            }
            push(Tok::Str(chars[begin + 1..i].iter().collect()));
            i += 1;
        } else if c == '.' && chars[i..].starts_with(&['.', '.', '.']) {
            push(Tok::Ellipsis);
            i += 3;
        } else if c == '/' {
            // `//` is integer division (Punct '/'); a single `/` true division (Punct '÷').
            if chars.get(i + 1) == Some(&'/') {
                push(Tok::Punct('/'));
                i += 2;
            } else {
                push(Tok::Punct('÷'));
                i += 1;
            }
        } else if "()[],=:+*-.@".contains(c) {
            match c {
                '(' | '[' => depth += 1,
                ')' | ']' => depth = depth.saturating_sub(1),
                _ => {}
            }
            push(Tok::Punct(c));
            i += 1;
        } else {
            return Err(err(line, col, format!("unexpected character '{c}'")));
        }
        col += i - begin;
    }
    out.push(Token {
        tok: Tok::Newline,
        line,
        col,
    });
    out.push(Token {
        tok: Tok::Eof,
        line,
        col,
    });
    Ok(out)
}
