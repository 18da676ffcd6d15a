//! Averaged-perceptron part-of-speech tagger (Penn Treebank tags) trained by hibari on spaCy
//! `en_core_web_sm`'s tags. Only the lexicon's part-of-speech entries ("read", "live",
//! "record") and the function-word rules depend on it. Pure table lookups.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;

use super::text::{char_is_digit, first_chars, is_alpha, is_digit, is_lower, is_upper, last_chars};

const START: [&str; 2] = ["-START2-", "-START-"];
const END: [&str; 2] = ["-END-", "-END2-"];

/// The tagger's data file (`tagger.json`) as stored.
#[derive(Deserialize)]
pub(crate) struct TaggerModel {
    tags: Vec<String>,
    tagdict: HashMap<String, String>,
    #[serde(default)]
    vocab: Option<Vec<String>>,
    weights: HashMap<String, HashMap<String, f64>>,
}

/// The loaded tagger: weights indexed by tag number.
pub(crate) struct Tagger {
    tags: Vec<String>,
    tagdict: HashMap<String, String>,
    vocab: Option<HashSet<String>>,
    weights: HashMap<String, Vec<(u16, f64)>>,
}

fn norm(word: &str) -> String {
    if word.contains('-') && !word.starts_with('-') {
        "!HYPHEN".to_string()
    } else if is_digit(word) && word.chars().count() == 4 {
        "!YEAR".to_string()
    } else if word.chars().next().is_some_and(char_is_digit) {
        "!DIGITS".to_string()
    } else {
        word.to_lowercase()
    }
}

fn shape(word: &str) -> String {
    if is_alpha(word) {
        if is_lower(word) {
            return "x".to_string();
        }
        if is_upper(word) {
            return if word.chars().count() > 1 { "XX" } else { "X1" }.to_string();
        }
        let mut chars = word.chars();
        let first_upper = chars.next().is_some_and(char::is_uppercase);
        if first_upper && is_lower(chars.as_str()) {
            return "Xx".to_string();
        }
        return "xX".to_string();
    }
    if is_digit(word) {
        return "d".to_string();
    }
    first_chars(word, 4)
        .chars()
        .map(|c| {
            if char_is_digit(c) {
                'd'
            } else if c.is_alphabetic() {
                'x'
            } else {
                c
            }
        })
        .collect()
}

impl Tagger {
    /// Index the weights by tag number.
    pub(crate) fn new(model: TaggerModel) -> Self {
        let index: HashMap<&str, u16> = model
            .tags
            .iter()
            .enumerate()
            .map(|(i, t)| (t.as_str(), i as u16))
            .collect();
        let weights = model
            .weights
            .into_iter()
            .map(|(feature, per_tag)| {
                let mut row: Vec<(u16, f64)> = per_tag
                    .into_iter()
                    .filter_map(|(tag, w)| index.get(tag.as_str()).map(|&i| (i, w)))
                    .collect();
                row.sort_by_key(|&(i, _)| i);
                (feature, row)
            })
            .collect();
        Self {
            tags: model.tags,
            tagdict: model.tagdict,
            vocab: model.vocab.map(|v| v.into_iter().collect()),
            weights,
        }
    }

    fn context(&self, words: &[String]) -> Vec<String> {
        let mut out: Vec<String> = START.iter().map(|s| s.to_string()).collect();
        for word in words {
            let n = norm(word);
            let known = self.vocab.as_ref().is_none_or(|v| v.contains(&n));
            out.push(if known {
                n
            } else {
                format!("<{}>", shape(word))
            });
        }
        out.extend(END.iter().map(|s| s.to_string()));
        out
    }

    fn predict(&self, features: &[String]) -> String {
        let mut scores = vec![0.0f64; self.tags.len()];
        let mut any = false;
        for feature in features {
            if let Some(row) = self.weights.get(feature)
                && !row.is_empty()
            {
                any = true;
                for &(tag, weight) in row {
                    scores[usize::from(tag)] += weight;
                }
            }
        }
        if !any {
            return "NN".to_string();
        }
        // Highest score; ties go to the greater tag name (Python's max over (score, tag)).
        let mut best: Option<usize> = None;
        for (i, tag) in self.tags.iter().enumerate() {
            best = match best {
                None => Some(i),
                Some(b) => {
                    let better = scores[i] > scores[b]
                        || (scores[i] == scores[b] && tag.as_str() > self.tags[b].as_str());
                    Some(if better { i } else { b })
                }
            };
        }
        best.map_or_else(|| "NN".to_string(), |i| self.tags[i].clone())
    }

    /// One tag per word.
    pub(crate) fn tag(&self, words: &[String]) -> Vec<String> {
        let ctx = self.context(words);
        let mut prev = START[1].to_string();
        let mut prev2 = START[0].to_string();
        let mut tags = Vec::with_capacity(words.len());
        for (i, word) in words.iter().enumerate() {
            let tag = match self.tagdict.get(word) {
                Some(tag) => tag.clone(),
                None => {
                    let j = i + 2;
                    let first = word.chars().next().map(String::from).unwrap_or_default();
                    let features = [
                        "b".to_string(),
                        format!("s3={}", last_chars(word, 3)),
                        format!("p1={first}"),
                        format!("w={}", ctx[j]),
                        format!("sh={}", shape(word)),
                        if i == 0 { "i0" } else { "i+" }.to_string(),
                        format!("t-1={prev}"),
                        format!("t-2={prev2}"),
                        format!("t-12={prev},{prev2}"),
                        format!("w-1={}", ctx[j - 1]),
                        format!("s3-1={}", last_chars(&ctx[j - 1], 3)),
                        format!("w-2={}", ctx[j - 2]),
                        format!("w+1={}", ctx[j + 1]),
                        format!("s3+1={}", last_chars(&ctx[j + 1], 3)),
                        format!("w+2={}", ctx[j + 2]),
                    ];
                    self.predict(&features)
                }
            };
            prev2 = std::mem::replace(&mut prev, tag.clone());
            tags.push(tag);
        }
        tags
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_norms_follow_hibari() {
        assert_eq!(shape("hello"), "x");
        assert_eq!(shape("NASA"), "XX");
        assert_eq!(shape("I"), "X1");
        assert_eq!(shape("Hello"), "Xx");
        assert_eq!(shape("iPhone"), "xX");
        assert_eq!(shape("1990"), "d");
        assert_eq!(shape("10am!"), "ddxx");
        assert_eq!(norm("well-known"), "!HYPHEN");
        assert_eq!(norm("2024"), "!YEAR");
        assert_eq!(norm("10am"), "!DIGITS");
        assert_eq!(norm("Book"), "book");
    }

    #[test]
    fn dictionary_words_and_weighted_guesses() {
        let model = TaggerModel {
            tags: vec!["NN".into(), "VB".into()],
            tagdict: [("the".to_string(), "DT".to_string())]
                .into_iter()
                .collect(),
            vocab: None,
            weights: [(
                "w-1=to".to_string(),
                [("VB".to_string(), 2.0), ("NN".to_string(), -1.0)]
                    .into_iter()
                    .collect(),
            )]
            .into_iter()
            .collect(),
        };
        let tagger = Tagger::new(model);
        let words: Vec<String> = ["the", "to", "book"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        // "to" has no features with weights: NN; "book" follows "to": VB.
        assert_eq!(tagger.tag(&words), ["DT", "NN", "VB"]);
    }
}
