//! The spec's syntax tree and its recursive-descent parser.
//!
//! ```text
//! spec      := { line }
//! line      := NEWLINE
//!            | 'input' NAME ':' '[' INT { ',' INT } ']' NEWLINE
//!            | 'forward' ':' NEWLINE                      -- starts the forward section
//!            | NAME { ',' NAME } '=' expr { ',' expr } NEWLINE -- a module (before) or value(s) (after)
//!            | 'return' expr { ',' expr } NEWLINE
//! expr      := term { ('+' | '-') term }
//! term      := unary { ('*' | '//' | '/' | '@') unary }
//! unary     := '-' unary | postfix
//! postfix   := atom { '(' [ arg { ',' arg } [','] ] ')' | '[' subscript { ',' subscript } [','] ']'
//!                   | '.' NAME }
//! atom      := NAME | INT | FLOAT | STRING
//!            | '[' [ expr { ',' expr } [','] ] ']' | '(' expr ')' | '(' [ expr ',' { expr ',' } [expr] ] ')'
//! subscript := '...' | [ expr ] ':' [ expr ] [ ':' [ expr ] ] | expr
//! arg       := NAME '=' expr | expr
//! ```

use super::lexer::{Tok, Token};
use super::SpecError;

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub line: usize,
    pub col: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Name(String),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Expr>),
    Tuple(Vec<Expr>),
    /// `func(args, key=value)`: `func` is a name (`conv1`, `F.relu`, `x.permute`), an attribute
    /// (`x.permute(0, 2, 1).reshape`) or an index (`self.layers[0]`).
    Call {
        func: Box<Expr>,
        args: Vec<Expr>,
        kwargs: Vec<(String, Expr)>,
    },
    /// `value.name` after a bracket (a name's own dots stay in the name).
    Attr(Box<Expr>, String),
    /// `value[subscripts]`.
    Index(Box<Expr>, Vec<Subscript>),
    /// `+`, `-`, `*` or `/` (for `//`).
    Binary(char, Box<Expr>, Box<Expr>),
    Neg(Box<Expr>),
}

/// One entry of an index: `x[0]`, `x[None]`, `x[1:8:2]`, `x[...]`.
#[derive(Clone, Debug, PartialEq)]
pub enum Subscript {
    /// An integer or `None`.
    Item(Expr),
    /// `start:stop:step`, each optional.
    Slice(Option<Expr>, Option<Expr>, Option<Expr>),
    Ellipsis,
}

/// What an assignment binds: a name, or names unpacked from a tuple (`(h, c)`).
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    Name(String),
    Tuple(Vec<Target>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    Input {
        name: String,
        dims: Vec<i64>,
    },
    Forward,
    /// `name = value`, or `a, b = value` / `y, (h, c) = value` (unpacking a tuple).
    Assign {
        targets: Vec<Target>,
        value: Expr,
    },
    Return(Vec<Expr>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Located {
    pub stmt: Stmt,
    pub line: usize,
    pub col: usize,
}

/// The deepest expression a spec may write, counting brackets, calls, unary minus and each
/// operator of a `+`/`*` chain: far beyond what a network needs, and shallow enough that parsing,
/// evaluating and dropping the tree (all recursive) cannot exhaust the stack.
pub const MAX_DEPTH: usize = 100;

pub struct Parser<'a> {
    toks: Vec<Token>,
    pos: usize,
    file: &'a str,
    /// Nesting of the expression being parsed (see [`MAX_DEPTH`]).
    depth: usize,
}

impl<'a> Parser<'a> {
    pub fn new(toks: Vec<Token>, file: &'a str) -> Self {
        Parser {
            toks,
            pos: 0,
            file,
            depth: 0,
        }
    }

    /// One level deeper into an expression; refused past [`MAX_DEPTH`]. Every call is matched
    /// by a `self.depth -= 1` when the level is done.
    fn deeper(&mut self) -> Result<(), SpecError> {
        if self.depth >= MAX_DEPTH {
            let t = self.peek();
            return Err(self.error_at(
                t,
                format!(
                    "expression nested more than {MAX_DEPTH} deep (brackets, calls and operators); \
                     split it over several lines with names"
                ),
            ));
        }
        self.depth += 1;
        Ok(())
    }

    fn peek(&self) -> &Token {
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn error_at(&self, t: &Token, message: String) -> SpecError {
        SpecError {
            file: self.file.to_string(),
            line: t.line,
            col: t.col,
            message,
        }
    }

    fn expected(&self, what: &str) -> SpecError {
        let t = self.peek();
        self.error_at(t, format!("expected {what}, found {}", t.tok.describe()))
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek().tok == Tok::Punct(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char, what: &str) -> Result<(), SpecError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.expected(what))
        }
    }

    fn name(&mut self, what: &str) -> Result<String, SpecError> {
        match self.peek().tok.clone() {
            Tok::Name(n) => {
                self.pos += 1;
                Ok(n)
            }
            _ => Err(self.expected(what)),
        }
    }

    fn end_of_line(&mut self) -> Result<(), SpecError> {
        match self.peek().tok {
            Tok::Newline => {
                self.pos += 1;
                Ok(())
            }
            _ => Err(self.expected("end of line")),
        }
    }

    /// Parses the whole spec into statements.
    pub fn statements(&mut self) -> Result<Vec<Located>, SpecError> {
        let mut out = Vec::new();
        loop {
            let t = self.peek().clone();
            let stmt = match &t.tok {
                Tok::Eof => return Ok(out),
                Tok::Newline => {
                    self.pos += 1;
                    continue;
                }
                Tok::Name(n) if n == "input" => {
                    self.pos += 1;
                    let name = self.name("an input name")?;
                    self.expect(
                        ':',
                        "':' and the input's shape, e.g. `input x: [3, 32, 32]`",
                    )?;
                    self.expect('[', "'[' starting the input's shape")?;
                    let mut dims = Vec::new();
                    loop {
                        match self.next().tok {
                            Tok::Int(d) => dims.push(d),
                            _ => {
                                self.pos -= 1;
                                return Err(self.expected("a dimension (a positive integer)"));
                            }
                        }
                        if self.eat(']') {
                            break;
                        }
                        self.expect(',', "',' or ']' in the input's shape")?;
                    }
                    Stmt::Input { name, dims }
                }
                Tok::Name(n) if n == "forward" => {
                    self.pos += 1;
                    self.expect(':', "':' after 'forward'")?;
                    Stmt::Forward
                }
                Tok::Name(n) if n == "return" => {
                    self.pos += 1;
                    let mut values = vec![self.expr()?];
                    while self.eat(',') {
                        values.push(self.expr()?);
                    }
                    Stmt::Return(values)
                }
                Tok::Name(_) => {
                    let mut targets = vec![self.target()?];
                    while self.eat(',') {
                        targets.push(self.target()?);
                    }
                    self.expect('=', "'=' (a statement is `name = ...`, `input ...`, `forward:` or `return ...`)")?;
                    // `a, b = x, y`: a tuple without brackets.
                    let first = self.expr()?;
                    let value = if self.peek().tok == Tok::Punct(',') {
                        let mut items = vec![first];
                        while self.eat(',') {
                            items.push(self.expr()?);
                        }
                        Expr {
                            line: items[0].line,
                            col: items[0].col,
                            kind: ExprKind::Tuple(items),
                        }
                    } else {
                        first
                    };
                    Stmt::Assign { targets, value }
                }
                _ => {
                    return Err(self.expected(
                        "a statement (`name = ...`, `input ...`, `forward:` or `return ...`)",
                    ))
                }
            };
            self.end_of_line()?;
            out.push(Located {
                stmt,
                line: t.line,
                col: t.col,
            });
        }
    }

    /// A name to assign to, or a parenthesized tuple of them.
    fn target(&mut self) -> Result<Target, SpecError> {
        if self.eat('(') {
            let mut items = vec![self.target()?];
            while self.eat(',') {
                items.push(self.target()?);
            }
            self.expect(')', "')' after the names to unpack")?;
            return Ok(Target::Tuple(items));
        }
        let name = self.name("a name to assign to")?;
        Ok(Target::Name(
            name.strip_prefix("self.").unwrap_or(&name).to_string(),
        ))
    }

    fn expr(&mut self) -> Result<Expr, SpecError> {
        self.chain(&['+', '-'], Self::term)
    }

    fn term(&mut self) -> Result<Expr, SpecError> {
        self.chain(&['*', '/', '÷', '@'], Self::unary)
    }

    /// `operand { op operand }`, left-nested; each operator is one level of [`MAX_DEPTH`].
    fn chain(
        &mut self,
        ops: &[char],
        operand: fn(&mut Self) -> Result<Expr, SpecError>,
    ) -> Result<Expr, SpecError> {
        let outer = self.depth;
        let result = (|| {
            let mut lhs = operand(self)?;
            while let Tok::Punct(op) = self.peek().tok {
                if !ops.contains(&op) {
                    break;
                }
                self.deeper()?;
                let t = self.next();
                let rhs = operand(self)?;
                lhs = Expr {
                    kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
                    line: t.line,
                    col: t.col,
                };
            }
            Ok(lhs)
        })();
        self.depth = outer;
        result
    }

    /// An atom followed by calls, indexes and attributes; each after the first is one level of
    /// [`MAX_DEPTH`] (`f(x)` is as deep as `x`, `x.permute(0, 1).reshape(-1)` two levels deeper).
    fn postfix(&mut self) -> Result<Expr, SpecError> {
        let outer = self.depth;
        let result = (|| {
            let mut e = self.atom()?;
            let mut first = true;
            loop {
                let t = self.peek().clone();
                if matches!(t.tok, Tok::Punct('(' | '[' | '.')) && !std::mem::take(&mut first) {
                    self.deeper()?;
                }
                // A call and an index are where their callee or value starts; an attribute is
                // where its name is.
                let (mut line, mut col) = (e.line, e.col);
                let kind = match t.tok {
                    Tok::Punct('(') => {
                        self.pos += 1;
                        let (args, kwargs) = self.arguments()?;
                        ExprKind::Call {
                            func: Box::new(e),
                            args,
                            kwargs,
                        }
                    }
                    Tok::Punct('[') => {
                        self.pos += 1;
                        let mut items = Vec::new();
                        while !self.eat(']') {
                            items.push(self.subscript()?);
                            if !self.eat(',') {
                                self.expect(']', "',' or ']' in the index")?;
                                break;
                            }
                        }
                        ExprKind::Index(Box::new(e), items)
                    }
                    Tok::Punct('.') => {
                        self.pos += 1;
                        (line, col) = (self.peek().line, self.peek().col);
                        let name = self.name("an attribute or method name after '.'")?;
                        ExprKind::Attr(Box::new(e), name)
                    }
                    _ => return Ok(e),
                };
                e = Expr { kind, line, col };
            }
        })();
        self.depth = outer;
        result
    }

    /// The arguments of a call, after its `(`, up to and including its `)`.
    #[allow(clippy::type_complexity)]
    fn arguments(&mut self) -> Result<(Vec<Expr>, Vec<(String, Expr)>), SpecError> {
        let (mut args, mut kwargs) = (Vec::new(), Vec::new());
        while !self.eat(')') {
            let is_kw = matches!(self.peek().tok, Tok::Name(_))
                && self.toks.get(self.pos + 1).map(|t| &t.tok) == Some(&Tok::Punct('='));
            if is_kw {
                let key = self.name("an argument name")?;
                self.pos += 1;
                kwargs.push((key, self.expr()?));
            } else if kwargs.is_empty() {
                args.push(self.expr()?);
            } else {
                return Err(self.expected("a keyword argument (positional arguments come first)"));
            }
            if !self.eat(',') {
                self.expect(')', "',' or ')' in the argument list")?;
                break;
            }
        }
        Ok((args, kwargs))
    }

    /// One entry of an index.
    fn subscript(&mut self) -> Result<Subscript, SpecError> {
        if self.peek().tok == Tok::Ellipsis {
            self.pos += 1;
            return Ok(Subscript::Ellipsis);
        }
        let ends = |p: &Self| {
            matches!(
                p.peek().tok,
                Tok::Punct(':') | Tok::Punct(',') | Tok::Punct(']')
            )
        };
        let start = if ends(self) { None } else { Some(self.expr()?) };
        if !self.eat(':') {
            return match start {
                Some(e) => Ok(Subscript::Item(e)),
                None => Err(self.expected("an index, a slice or '...'")),
            };
        }
        let stop = if ends(self) { None } else { Some(self.expr()?) };
        let step = if self.eat(':') && !ends(self) {
            Some(self.expr()?)
        } else {
            None
        };
        Ok(Subscript::Slice(start, stop, step))
    }

    fn unary(&mut self) -> Result<Expr, SpecError> {
        self.deeper()?;
        let result = if self.peek().tok == Tok::Punct('-') {
            let t = self.next();
            self.unary().map(|inner| Expr {
                kind: ExprKind::Neg(Box::new(inner)),
                line: t.line,
                col: t.col,
            })
        } else {
            self.postfix()
        };
        self.depth -= 1;
        result
    }

    fn atom(&mut self) -> Result<Expr, SpecError> {
        let t = self.next();
        let at = |kind| Expr {
            kind,
            line: t.line,
            col: t.col,
        };
        Ok(match t.tok.clone() {
            Tok::Int(i) => at(ExprKind::Int(i)),
            Tok::Float(f) => at(ExprKind::Float(f)),
            Tok::Str(s) => at(ExprKind::Str(s)),
            Tok::Name(n) => at(ExprKind::Name(n)),
            Tok::Punct('[') => {
                let mut items = Vec::new();
                while !self.eat(']') {
                    items.push(self.expr()?);
                    if !self.eat(',') {
                        self.expect(']', "',' or ']' in the list")?;
                        break;
                    }
                }
                at(ExprKind::List(items))
            }
            Tok::Punct('(') => {
                let mut items = Vec::new();
                let mut tuple = false;
                while !self.eat(')') {
                    items.push(self.expr()?);
                    if self.eat(',') {
                        tuple = true;
                    } else {
                        self.expect(')', "',' or ')'")?;
                        break;
                    }
                }
                if !tuple && items.len() == 1 {
                    items
                        .pop()
                        .unwrap_or_else(|| at(ExprKind::Tuple(Vec::new())))
                } else {
                    at(ExprKind::Tuple(items))
                }
            }
            _ => {
                self.pos -= 1;
                return Err(self
                    .expected("a value (a name, a call, a number, a string, a list or a tuple)"));
            }
        })
    }
}
