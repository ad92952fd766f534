//! The 23 voting scenarios of EIP-225 ("Test Cases"), read from
//! `$NETMIND_CONFORMANCE_DIR/eip-225.md` (default `../shared/conformance` next to
//! the repository), run against [`Snapshot::apply`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use alloy_consensus::Header;
use alloy_primitives::{Address, U256, keccak256};
use alloy_signer_local::PrivateKeySigner;
use netmind_chain::clique::tally::Snapshot;
use netmind_chain::clique::{CliqueError, NONCE_AUTH, NONCE_DROP, seal};

/// A Go composite-literal value, as far as the test table uses them.
#[derive(Debug, Clone)]
enum V {
    Str(String),
    Num(u64),
    Ident(String),
    List(Vec<Self>),
    Map(BTreeMap<String, Self>, Option<String>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    Comma,
    Colon,
    Word(String),
    Str(String),
    Comment(String),
}

fn tokenize(src: &str) -> Vec<Tok> {
    let b = src.as_bytes();
    let mut i = 0;
    let mut out = vec![];
    while i < b.len() {
        let c = b[i] as char;
        match c {
            '{' => out.push(Tok::Open),
            '}' => out.push(Tok::Close),
            ',' => out.push(Tok::Comma),
            ':' => out.push(Tok::Colon),
            '[' | ']' => {} // `[]string`, `[]block`: the type prefix carries no data
            '/' if b.get(i + 1) == Some(&b'/') => {
                let end = src[i..].find('\n').map_or(b.len(), |e| i + e);
                out.push(Tok::Comment(src[i + 2..end].trim().to_string()));
                i = end;
                continue;
            }
            '"' => {
                let end = i + 1 + src[i + 1..].find('"').expect("closed string");
                out.push(Tok::Str(src[i + 1..end].to_string()));
                i = end;
            }
            c if c.is_alphanumeric() || c == '_' => {
                let end = src[i..]
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .map_or(b.len(), |e| i + e);
                out.push(Tok::Word(src[i..end].to_string()));
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Parses one value at `toks[*i]`; a type name before `{` is skipped.
fn parse(toks: &[Tok], i: &mut usize) -> V {
    let mut comment = None;
    while let Tok::Comment(c) = &toks[*i] {
        comment.get_or_insert_with(|| c.clone());
        *i += 1;
    }
    match &toks[*i] {
        Tok::Str(s) => {
            *i += 1;
            V::Str(s.clone())
        }
        Tok::Word(w) if toks.get(*i + 1) == Some(&Tok::Open) => {
            *i += 1; // type name (`string`, `block`)
            let _ = w;
            parse(toks, i)
        }
        Tok::Word(w) => {
            *i += 1;
            w.parse().map_or_else(|_| V::Ident(w.clone()), V::Num)
        }
        Tok::Open => {
            *i += 1;
            let skip_comments = |i: &mut usize, comment: &mut Option<String>| {
                while let Tok::Comment(c) = &toks[*i] {
                    comment.get_or_insert_with(|| c.clone());
                    *i += 1;
                }
            };
            skip_comments(i, &mut comment);
            let is_map = matches!(
                (&toks[*i], toks.get(*i + 1)),
                (Tok::Word(_), Some(Tok::Colon))
            );
            let mut list = vec![];
            let mut map = BTreeMap::new();
            loop {
                skip_comments(i, &mut comment);
                if toks[*i] == Tok::Close {
                    *i += 1;
                    break;
                }
                if is_map {
                    let Tok::Word(key) = toks[*i].clone() else {
                        panic!("key expected at {:?}", toks[*i])
                    };
                    *i += 2;
                    map.insert(key, parse(toks, i));
                } else {
                    list.push(parse(toks, i));
                }
                if toks[*i] == Tok::Comma {
                    *i += 1;
                }
            }
            if is_map {
                V::Map(map, comment)
            } else {
                V::List(list)
            }
        }
        t => panic!("unexpected token {t:?}"),
    }
}

pub(crate) fn conformance_dir() -> PathBuf {
    std::env::var_os("NETMIND_CONFORMANCE_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance"),
        PathBuf::from,
    )
}

fn strs(v: Option<&V>) -> Vec<String> {
    match v {
        Some(V::List(l)) => l
            .iter()
            .map(|s| match s {
                V::Str(s) => s.clone(),
                other => panic!("string expected, got {other:?}"),
            })
            .collect(),
        None => vec![],
        other => panic!("list expected, got {other:?}"),
    }
}

fn key(name: &str) -> PrivateKeySigner {
    PrivateKeySigner::from_bytes(&keccak256(format!("eip-225 {name}"))).unwrap()
}

#[test]
fn eip225_voting_scenarios() {
    let path = conformance_dir().join("eip-225.md");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}); set NETMIND_CONFORMANCE_DIR",
            path.display()
        )
    });
    let start = text.find("tests := []struct").expect("test table");
    let open = start + text[start..].find("}{").expect("table literal") + 1;
    let toks = tokenize(&text[open..]);
    let V::List(cases) = parse(&toks, &mut 0) else {
        panic!("list of cases expected")
    };
    assert_eq!(cases.len(), 23, "EIP-225 lists 23 scenarios");
    let mut failures = 0;
    for (n, case) in cases.iter().enumerate() {
        let V::Map(case, comment) = case else {
            panic!("case {n} is not a struct")
        };
        let name = format!("case {n}: {}", comment.clone().unwrap_or_default());
        let epoch = match case.get("epoch") {
            Some(V::Num(e)) => *e,
            _ => 30_000,
        };
        let addr = |n: &str| key(n).address();
        let genesis: BTreeSet<Address> =
            strs(case.get("signers")).iter().map(|s| addr(s)).collect();
        let snap = Snapshot::new(epoch, 0, genesis);
        let Some(V::List(blocks)) = case.get("blocks") else {
            panic!("{name}: no blocks")
        };
        let mut headers = vec![];
        for (j, b) in blocks.iter().enumerate() {
            let V::Map(b, _) = b else {
                panic!("{name}: block {j} is not a struct")
            };
            let Some(V::Str(signer)) = b.get("signer") else {
                panic!("{name}: block {j} has no signer")
            };
            let voted = match b.get("voted") {
                Some(V::Str(v)) => addr(v),
                _ => Address::ZERO,
            };
            let auth = matches!(b.get("auth"), Some(V::Ident(t)) if t == "true");
            let mut checkpoint: Vec<Address> =
                strs(b.get("checkpoint")).iter().map(|s| addr(s)).collect();
            checkpoint.sort();
            let mut extra = vec![0u8; 32];
            checkpoint
                .iter()
                .for_each(|a| extra.extend_from_slice(a.as_slice()));
            extra.extend_from_slice(&[0u8; 65]);
            let mut h = Header {
                number: j as u64 + 1,
                beneficiary: voted,
                nonce: if auth { NONCE_AUTH } else { NONCE_DROP },
                extra_data: extra.into(),
                difficulty: U256::from(2),
                ..Default::default()
            };
            seal(&mut h, &key(signer)).unwrap();
            headers.push(h);
        }
        let result = snap.apply(&headers);
        match case.get("failure") {
            Some(V::Ident(f)) => {
                failures += 1;
                let err = result.expect_err(&name);
                match f.as_str() {
                    "errUnauthorizedSigner" => {
                        assert!(
                            matches!(err, CliqueError::UnauthorizedSigner(_)),
                            "{name}: {err}"
                        )
                    }
                    "errRecentlySigned" => {
                        assert!(
                            matches!(err, CliqueError::RecentlySigned(_)),
                            "{name}: {err}"
                        )
                    }
                    other => panic!("{name}: unknown failure {other}"),
                }
            }
            _ => {
                let got = result.unwrap_or_else(|e| panic!("{name}: {e}")).signers;
                let want: BTreeSet<Address> =
                    strs(case.get("results")).iter().map(|s| addr(s)).collect();
                assert_eq!(got, want, "{name}");
            }
        }
    }
    assert_eq!(failures, 3, "three scenarios expect a failure");
}
