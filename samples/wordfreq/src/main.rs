//! The wordfreq sample: counts words across every `.txt` file in `/input` and writes the most frequent.
//!
//! Run with: `netmind run samples/wordfreq --input DIR -- --top 20`

use std::{collections::HashMap, process::ExitCode};

use netmind_sdk::{Error, Result};
use regex::Regex;
use serde::Serialize;

/// How many words `/output/wordfreq.json` lists when `--top` is not given.
const DEFAULT_TOP: usize = 20;

/// How many words the job's result lists.
const RESULT_TOP: usize = 10;

/// One word and how often it occurs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct WordCount {
    word: String,
    count: u64,
}

/// The contents of `/output/wordfreq.json`.
#[derive(Debug, Serialize)]
struct Report {
    files: usize,
    total_words: u64,
    distinct_words: usize,
    top: Vec<WordCount>,
}

fn main() -> ExitCode {
    netmind_sdk::run(|| {
        let top_n = top(&netmind_sdk::args())?;
        let texts: Vec<_> = netmind_sdk::inputs()?
            .into_iter()
            .filter(|input| input.name.to_ascii_lowercase().ends_with(".txt"))
            .collect();
        if texts.is_empty() {
            return Err(Error::invalid(
                "no .txt files in /input; pass a directory of text files with `netmind run --input DIR`",
            ));
        }
        let words = Regex::new(r"\w+").expect("valid regex");
        let mut counts = HashMap::new();
        let total = texts.len() as u64;
        for (i, input) in texts.iter().enumerate() {
            let text = netmind_sdk::read_input_to_string(&input.name)?;
            count_words(&words, &text, &mut counts);
            netmind_sdk::progress(i as u64 + 1, total, &input.name);
        }
        let report = Report {
            files: texts.len(),
            total_words: counts.values().sum(),
            distinct_words: counts.len(),
            top: most_frequent(&counts, top_n),
        };
        for WordCount { word, count } in &report.top {
            println!("{count:>8} {word}");
        }
        netmind_sdk::write_output_json("wordfreq.json", &report)?;
        Ok(most_frequent(&counts, RESULT_TOP))
    })
}

/// `--top N` (or `--top=N`) from the arguments, else [`DEFAULT_TOP`].
fn top(args: &[String]) -> Result<usize> {
    let mut top = DEFAULT_TOP;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let value = if arg == "--top" {
            iter.next()
                .ok_or_else(|| Error::invalid("--top needs a value"))?
        } else if let Some(value) = arg.strip_prefix("--top=") {
            value
        } else {
            return Err(Error::invalid(format!(
                "unknown argument `{arg}`; usage: wordfreq [--top N]"
            )));
        };
        top = value
            .parse()
            .map_err(|_| Error::invalid(format!("--top: `{value}` is not a whole number")))?;
    }
    Ok(top)
}

/// Adds the words of `text` (Unicode `\w+`, lowercased) to `counts`.
fn count_words(words: &Regex, text: &str, counts: &mut HashMap<String, u64>) {
    for word in words.find_iter(text) {
        *counts.entry(word.as_str().to_lowercase()).or_default() += 1;
    }
}

/// The `n` most frequent words, by count (descending), ties broken by word (ascending).
fn most_frequent(counts: &HashMap<String, u64>, n: usize) -> Vec<WordCount> {
    let mut all: Vec<_> = counts.iter().collect();
    all.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    all.into_iter()
        .take(n)
        .map(|(word, &count)| WordCount {
            word: word.clone(),
            count,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wc(word: &str, count: u64) -> WordCount {
        WordCount {
            word: word.to_owned(),
            count,
        }
    }

    #[test]
    fn counts_unicode_words_lowercased_with_ties_by_word() {
        let words = Regex::new(r"\w+").unwrap();
        let mut counts = HashMap::new();
        count_words(
            &words,
            "The cat; the DOG. Ünïcode ünïcode! b a",
            &mut counts,
        );
        count_words(&words, "dog_2 the", &mut counts);
        assert_eq!(
            most_frequent(&counts, 4),
            [wc("the", 3), wc("ünïcode", 2), wc("a", 1), wc("b", 1)]
        );
        assert_eq!(counts["dog_2"], 1);
        assert_eq!(most_frequent(&counts, 100).len(), counts.len());
    }

    #[test]
    fn parses_top() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(top(&args(&[])).unwrap(), DEFAULT_TOP);
        assert_eq!(top(&args(&["--top", "5"])).unwrap(), 5);
        assert_eq!(top(&args(&["--top=0"])).unwrap(), 0);
        assert!(top(&args(&["--top", "-1"])).is_err());
        assert!(top(&args(&["x"])).is_err());
    }
}
