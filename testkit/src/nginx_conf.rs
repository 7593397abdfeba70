//! A small reader of nginx configuration text (directives, arguments,
//! blocks), enough to compare hand-written test configs with the
//! platform's templates. Comments are dropped, quotes removed; `${VAR}`
//! template variables stay part of their word.

/// One directive: `name args...;` or `name args... { block }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directive {
    pub name: String,
    pub args: Vec<String>,
    pub block: Option<Vec<Directive>>,
}

impl Directive {
    /// The directives of this block (empty for a simple directive).
    pub fn children(&self) -> &[Directive] {
        self.block.as_deref().unwrap_or(&[])
    }
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Open,
    Close,
    End,
}

fn tokens(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            _ if c.is_whitespace() => i += 1,
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '{' => {
                out.push(Token::Open);
                i += 1;
            }
            '}' => {
                out.push(Token::Close);
                i += 1;
            }
            ';' => {
                out.push(Token::End);
                i += 1;
            }
            '"' | '\'' => {
                let mut w = String::new();
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    w.push(chars[i]);
                    i += 1;
                }
                if i >= chars.len() {
                    return Err("unterminated quote".into());
                }
                i += 1;
                out.push(Token::Word(w));
            }
            _ => {
                let mut w = String::new();
                while i < chars.len() {
                    let c = chars[i];
                    if c == '$' && chars.get(i + 1) == Some(&'{') {
                        // ${VAR} (a template variable) or ${var} (nginx).
                        while i < chars.len() && chars[i] != '}' {
                            w.push(chars[i]);
                            i += 1;
                        }
                        if i < chars.len() {
                            w.push('}');
                            i += 1;
                        }
                        continue;
                    }
                    if c.is_whitespace() || matches!(c, '{' | '}' | ';') {
                        break;
                    }
                    w.push(c);
                    i += 1;
                }
                out.push(Token::Word(w));
            }
        }
    }
    Ok(out)
}

/// Parses configuration text (a whole file or a snippet such as one
/// `location` block).
pub fn parse(text: &str) -> Result<Vec<Directive>, String> {
    let toks = tokens(text)?;
    let mut pos = 0;
    block(&toks, &mut pos, false)
}

fn block(toks: &[Token], pos: &mut usize, nested: bool) -> Result<Vec<Directive>, String> {
    let mut out = Vec::new();
    let mut words: Vec<String> = Vec::new();
    while *pos < toks.len() {
        let t = &toks[*pos];
        *pos += 1;
        match t {
            Token::Word(w) => words.push(w.clone()),
            Token::End | Token::Open => {
                if words.is_empty() {
                    return Err("directive without a name".into());
                }
                let name = words.remove(0);
                let args = std::mem::take(&mut words);
                let inner = if *t == Token::Open {
                    let b = block(toks, pos, true)?;
                    if toks.get(*pos - 1) != Some(&Token::Close) {
                        return Err(format!("unterminated block {name}"));
                    }
                    Some(b)
                } else {
                    None
                };
                out.push(Directive {
                    name,
                    args,
                    block: inner,
                });
            }
            Token::Close => {
                if !nested {
                    return Err("unbalanced '}'".into());
                }
                if !words.is_empty() {
                    return Err(format!("missing ';' after {}", words.join(" ")));
                }
                return Ok(out);
            }
        }
    }
    if !words.is_empty() {
        return Err(format!("missing ';' after {}", words.join(" ")));
    }
    Ok(out)
}

/// Every directive with its chain of enclosing block names (outermost
/// first), depth first.
pub fn walk(conf: &[Directive]) -> Vec<(Vec<&str>, &Directive)> {
    fn go<'a>(
        ds: &'a [Directive],
        path: &mut Vec<&'a str>,
        out: &mut Vec<(Vec<&'a str>, &'a Directive)>,
    ) {
        for d in ds {
            out.push((path.clone(), d));
            if let Some(b) = &d.block {
                path.push(&d.name);
                go(b, path, out);
                path.pop();
            }
        }
    }
    let mut out = Vec::new();
    go(conf, &mut Vec::new(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_blocks_quotes_comments_and_template_variables() {
        let c = parse(
            "http { # c\n listen ${PORT}; location ~ \"^/(?<s>[^/]+)/$\" { return 200 'a;b'; } }",
        )
        .unwrap();
        assert_eq!(c.len(), 1);
        let server = c[0].children();
        assert_eq!(server[0].name, "listen");
        assert_eq!(server[0].args, ["${PORT}"]);
        assert_eq!(server[1].args, ["~", "^/(?<s>[^/]+)/$"]);
        assert_eq!(server[1].children()[0].args, ["200", "a;b"]);
        let names: Vec<_> = walk(&c)
            .into_iter()
            .map(|(p, d)| format!("{}/{}", p.join("/"), d.name))
            .collect();
        assert_eq!(
            names,
            [
                "/http",
                "http/listen",
                "http/location",
                "http/location/return"
            ]
        );
    }

    #[test]
    fn refuses_unbalanced_text() {
        assert!(parse("http { listen 1;").is_err());
        assert!(parse("listen 1; }").is_err());
        assert!(parse("listen 1").is_err());
    }
}
