//! misaki's English lexicon logic (misaki 0.9.4 `en.py`, Apache-2.0, hexgrad), as ported to
//! Python by hibari's `lexicon.py` and from there to Rust: dictionary lookup with
//! part-of-speech entries, function-word rules, stems (-s, -ed, -ing), stress, and numbers
//! (cardinals, ordinals, years, decimals, $/£/€ amounts). American rules only (the bundled
//! voice is American).

use std::collections::HashMap;

use serde::Deserialize;
use unicode_normalization::UnicodeNormalization;

use super::numbers;
use super::text::{
    capitalize, char_len, drop_last_chars, is_alpha, last_char, second_last_char, skip_chars,
};
use super::token::Tok;

pub(crate) const PRIMARY_STRESS: char = 'ˈ';
pub(crate) const SECONDARY_STRESS: char = 'ˌ';
const VOWELS: &str = "AIOQWYaiuæɑɒɔəɛɜɪʊʌᵻ";
const CONSONANTS: &str = "bdfhjklmnpstvwzðŋɡɹɾʃʒʤʧθ";
const DIPHTHONGS: &str = "AIOQWYʤʧ";
const US_TAUS: &str = "AIOWYiuæɑəɛɪɹʊʌ";
const ORDINALS: [&str; 4] = ["st", "nd", "rd", "th"];

/// Whether `c` is a vowel phoneme.
pub(crate) fn is_vowel(c: char) -> bool {
    VOWELS.contains(c)
}

/// Whether `c` is a consonant phoneme.
pub(crate) fn is_consonant(c: char) -> bool {
    CONSONANTS.contains(c)
}

fn is_stress(c: char) -> bool {
    c == PRIMARY_STRESS || c == SECONDARY_STRESS
}

/// Names and sub-units read for a currency symbol the lexicon layer handles.
fn currency_units(symbol: &str) -> Option<(&'static str, &'static str)> {
    match symbol {
        "$" => Some(("dollar", "cent")),
        "£" => Some(("pound", "pence")),
        "€" => Some(("euro", "cent")),
        _ => None,
    }
}

/// Whether `symbol` is a currency the lexicon reads ($, £, €).
pub(crate) fn is_lexicon_currency(symbol: &str) -> bool {
    currency_units(symbol).is_some()
}

fn symbol_word(word: &str) -> Option<&'static str> {
    match word {
        "%" => Some("percent"),
        "&" => Some("and"),
        "+" => Some("plus"),
        "@" => Some("at"),
        _ => None,
    }
}

/// Phonetic weight of a phoneme string: diphthongs count twice.
pub(crate) fn stress_weight(ps: &str) -> usize {
    ps.chars()
        .map(|c| if DIPHTHONGS.contains(c) { 2 } else { 1 })
        .sum()
}

fn restress(ps: &str) -> String {
    let chars: Vec<char> = ps.chars().collect();
    let mut positioned: Vec<(f64, char)> = chars
        .iter()
        .enumerate()
        .map(|(i, &c)| (i as f64, c))
        .collect();
    for (i, &c) in chars.iter().enumerate() {
        if is_stress(c)
            && let Some(j) = (i..chars.len()).find(|&j| is_vowel(chars[j]))
        {
            positioned[i].0 = j as f64 - 0.5;
        }
    }
    positioned.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    positioned.into_iter().map(|(_, c)| c).collect()
}

/// Raise or lower the stress marks of a phoneme string (misaki's `apply_stress`): below -1
/// removes them, -1 (or 0 / -0.5 with a primary) demotes primaries, 0..1 adds a secondary to an
/// unstressed word, 1+ promotes a lone secondary, above 1 adds a primary.
pub(crate) fn apply_stress(ps: &str, stress: Option<f64>) -> String {
    let Some(stress) = stress else {
        return ps.to_string();
    };
    let has_primary = ps.contains(PRIMARY_STRESS);
    let has_secondary = ps.contains(SECONDARY_STRESS);
    let has_any = has_primary || has_secondary;
    let has_vowel = ps.chars().any(is_vowel);
    if stress < -1.0 {
        ps.chars().filter(|&c| !is_stress(c)).collect()
    } else if stress == -1.0 || ((stress == 0.0 || stress == -0.5) && has_primary) {
        ps.chars()
            .filter(|&c| c != SECONDARY_STRESS)
            .map(|c| {
                if c == PRIMARY_STRESS {
                    SECONDARY_STRESS
                } else {
                    c
                }
            })
            .collect()
    } else if (stress == 0.0 || stress == 0.5 || stress == 1.0) && !has_any {
        if !has_vowel {
            return ps.to_string();
        }
        restress(&format!("{SECONDARY_STRESS}{ps}"))
    } else if stress >= 1.0 && !has_primary && has_secondary {
        ps.replace(SECONDARY_STRESS, &PRIMARY_STRESS.to_string())
    } else if stress > 1.0 && !has_any {
        if !has_vowel {
            return ps.to_string();
        }
        restress(&format!("{PRIMARY_STRESS}{ps}"))
    } else {
        ps.to_string()
    }
}

fn parent_tag(tag: Option<&str>) -> Option<&str> {
    let tag = tag?;
    Some(if tag.starts_with("VB") {
        "VERB"
    } else if tag.starts_with("NN") {
        "NOUN"
    } else if tag.starts_with("ADV") || tag.starts_with("RB") {
        "ADV"
    } else if tag.starts_with("ADJ") || tag.starts_with("JJ") {
        "ADJ"
    } else {
        tag
    })
}

/// Where the next word starts, seen from the word being read (the G2P works right to left).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Context {
    /// Whether the next word starts with a vowel; `None` when punctuation or nothing follows.
    pub future_vowel: Option<bool>,
    /// Whether the next word is "to".
    pub future_to: bool,
}

/// One dictionary entry: a pronunciation, or pronunciations by part of speech.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Entry {
    Plain(String),
    Tagged(HashMap<String, Option<String>>),
}

/// A misaki dictionary; a lowercase key also answers to its Capitalized form and vice versa
/// unless the other form has its own entry (misaki's `grow_dictionary`, done at lookup time).
pub(crate) struct Dict(HashMap<String, Entry>);

impl Dict {
    pub(crate) fn new(entries: HashMap<String, Entry>) -> Self {
        Self(entries)
    }

    fn get(&self, word: &str) -> Option<&Entry> {
        if let Some(entry) = self.0.get(word) {
            return Some(entry);
        }
        if char_len(word) < 2 {
            return None;
        }
        let lower = word.to_lowercase();
        if word == lower {
            let capitalized = capitalize(word);
            return if capitalized != word {
                self.0.get(&capitalized)
            } else {
                None
            };
        }
        if word == capitalize(&lower) {
            return self.0.get(&lower);
        }
        None
    }

    fn contains(&self, word: &str) -> bool {
        self.get(word).is_some()
    }

    fn plain(&self, word: &str) -> Option<String> {
        match self.get(word) {
            Some(Entry::Plain(ps)) => Some(ps.clone()),
            _ => None,
        }
    }

    fn tagged(&self, word: &str, tag: &str) -> Option<String> {
        match self.get(word) {
            Some(Entry::Tagged(by_tag)) => by_tag.get(tag).cloned().flatten(),
            Some(Entry::Plain(ps)) => Some(ps.clone()),
            None => None,
        }
    }
}

/// Phonemes and how sure the lexicon is (misaki's rating: 5 given, 4 gold, 3 silver or
/// rule, 2 guessed).
pub(crate) type Reading = (String, i32);

/// The American lexicon: misaki's `us_gold` and `us_silver` dictionaries and rules.
pub(crate) struct Lexicon {
    golds: Dict,
    silvers: Dict,
}

fn upper(s: &str) -> String {
    s.to_uppercase()
}

fn lower(s: &str) -> String {
    s.to_lowercase()
}

fn in_lexicon_alphabet(c: char) -> bool {
    c == '\'' || c == '-' || c.is_ascii_alphabetic()
}

fn ascii_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Python's `re.split(r"[^a-z]+", text)`: words between runs of other characters, with an
/// empty string first (last) when the text starts (ends) with such a run.
fn split_on_non_letters(text: &str) -> Vec<&str> {
    let is_separator = |c: char| !c.is_ascii_lowercase();
    let mut parts: Vec<&str> = text.split(is_separator).filter(|w| !w.is_empty()).collect();
    if text.starts_with(is_separator) || text.is_empty() {
        parts.insert(0, "");
    }
    if text.ends_with(is_separator) {
        parts.push("");
    }
    parts
}

/// Unicode decimal digits other than ASCII that survive NFKC (Devanagari) as ASCII.
fn numeric_if_needed(c: char) -> char {
    match c {
        '\u{0966}'..='\u{096F}' => char::from_digit(c as u32 - 0x0966, 10).unwrap_or(c),
        _ => c,
    }
}

impl Lexicon {
    /// The lexicon from misaki's gold and silver dictionaries.
    pub(crate) fn new(gold: Dict, silver: Dict) -> Self {
        Self {
            golds: gold,
            silvers: silver,
        }
    }

    /// Spell a word letter by letter ("NASA" as an initialism), stressing the last letter.
    fn get_nnp(&self, word: &str) -> Option<Reading> {
        let mut letters = String::new();
        for c in word.chars().filter(|c| c.is_alphabetic()) {
            letters.push_str(&self.golds.plain(&c.to_uppercase().to_string())?);
        }
        let ps = apply_stress(&letters, Some(0.0));
        let ps = match ps.rfind(SECONDARY_STRESS) {
            Some(at) => format!(
                "{}{PRIMARY_STRESS}{}",
                &ps[..at],
                &ps[at + SECONDARY_STRESS.len_utf8()..]
            ),
            None => ps,
        };
        Some((ps, 3))
    }

    fn get_special_case(
        &self,
        word: &str,
        tag: Option<&str>,
        stress: Option<f64>,
        ctx: &Context,
    ) -> Option<Reading> {
        let tag_str = tag.unwrap_or("");
        if tag == Some("ADD") && matches!(word, "." | "/") {
            let name = if word == "." { "dot" } else { "slash" };
            return self.lookup(name, None, Some(-0.5), Some(ctx));
        }
        if let Some(name) = symbol_word(word) {
            return self.lookup(name, None, None, Some(ctx));
        }
        let inner = word.trim_matches('.');
        if inner.contains('.')
            && is_alpha(&word.replace('.', ""))
            && word.split('.').map(char_len).max().unwrap_or(0) < 3
        {
            return self.get_nnp(word);
        }
        match word {
            "a" | "A" => {
                return Some((if tag_str == "DT" { "ɐ" } else { "ˈA" }.to_string(), 4));
            }
            "am" | "Am" | "AM" => {
                if tag_str.starts_with("NN") {
                    return self.get_nnp(word);
                }
                if ctx.future_vowel.is_none() || word != "am" || stress.is_some_and(|s| s > 0.0) {
                    return self.golds.plain("am").map(|ps| (ps, 4));
                }
                return Some(("ɐm".to_string(), 4));
            }
            "an" | "An" | "AN" => {
                if word == "AN" && tag_str.starts_with("NN") {
                    return self.get_nnp(word);
                }
                return Some(("ɐn".to_string(), 4));
            }
            "I" if tag_str == "PRP" => return Some((format!("{SECONDARY_STRESS}I"), 4)),
            "by" | "By" | "BY" if parent_tag(tag) == Some("ADV") => {
                return Some(("bˈI".to_string(), 4));
            }
            _ => {}
        }
        if matches!(word, "to" | "To") || (word == "TO" && matches!(tag_str, "TO" | "IN")) {
            return match ctx.future_vowel {
                None => self.golds.plain("to").map(|ps| (ps, 4)),
                Some(false) => Some(("tə".to_string(), 4)),
                Some(true) => Some(("tʊ".to_string(), 4)),
            };
        }
        if matches!(word, "in" | "In") || (word == "IN" && tag_str != "NNP") {
            let stress = if ctx.future_vowel.is_none() || tag_str != "IN" {
                PRIMARY_STRESS.to_string()
            } else {
                String::new()
            };
            return Some((format!("{stress}ɪn"), 4));
        }
        if matches!(word, "the" | "The") || (word == "THE" && tag_str == "DT") {
            let ps = if ctx.future_vowel == Some(true) {
                "ði"
            } else {
                "ðə"
            };
            return Some((ps.to_string(), 4));
        }
        if tag_str == "IN" && matches!(lower(word).as_str(), "vs" | "vs.") {
            return self.lookup("versus", None, None, Some(ctx));
        }
        if matches!(word, "used" | "Used" | "USED") {
            let key = if matches!(tag_str, "VBD" | "JJ") && ctx.future_to {
                "VBD"
            } else {
                "DEFAULT"
            };
            return self.golds.tagged("used", key).map(|ps| (ps, 4));
        }
        None
    }

    fn is_known(&self, word: &str) -> bool {
        if self.golds.contains(word) || symbol_word(word).is_some() || self.silvers.contains(word) {
            return true;
        }
        if !is_alpha(word) || !word.chars().all(in_lexicon_alphabet) {
            return false;
        }
        if char_len(word) == 1 {
            return true;
        }
        if word == upper(word) && self.golds.contains(&lower(word)) {
            return true;
        }
        let rest = skip_chars(word, 1);
        rest == upper(rest)
    }

    /// Dictionary lookup with part-of-speech entries and the initialism fallback.
    fn lookup(
        &self,
        word: &str,
        tag: Option<&str>,
        stress: Option<f64>,
        ctx: Option<&Context>,
    ) -> Option<Reading> {
        let mut word = word.to_string();
        let mut is_nnp: Option<bool> = None;
        if word == upper(&word) && !self.golds.contains(&word) {
            word = lower(&word);
            is_nnp = Some(tag == Some("NNP"));
        }
        let mut entry = self.golds.get(&word);
        let mut rating = 4;
        if entry.is_none() && is_nnp != Some(true) {
            entry = self.silvers.get(&word);
            rating = 3;
        }
        let ps: Option<String> = match entry {
            None => None,
            Some(Entry::Plain(ps)) => Some(ps.clone()),
            Some(Entry::Tagged(by_tag)) => {
                let key: Option<&str> = if ctx.is_some_and(|c| c.future_vowel.is_none())
                    && by_tag.contains_key("None")
                {
                    Some("None")
                } else if tag.is_some_and(|t| by_tag.contains_key(t)) {
                    tag
                } else {
                    parent_tag(tag)
                };
                match key.and_then(|k| by_tag.get(k)) {
                    Some(value) => value.clone(),
                    None => by_tag.get("DEFAULT").cloned().flatten(),
                }
            }
        };
        let needs_spelling = match &ps {
            None => true,
            Some(ps) => is_nnp == Some(true) && !ps.contains(PRIMARY_STRESS),
        };
        if needs_spelling && let Some(reading) = self.get_nnp(&word) {
            return Some(reading);
        }
        ps.map(|ps| (apply_stress(&ps, stress), rating))
    }

    fn plural(&self, stem: &str) -> Option<String> {
        let last = last_char(stem)?;
        Some(if "ptkfθ".contains(last) {
            format!("{stem}s")
        } else if "szʃʒʧʤ".contains(last) {
            format!("{stem}ᵻz")
        } else {
            format!("{stem}z")
        })
    }

    fn stem_s(
        &self,
        word: &str,
        tag: Option<&str>,
        stress: Option<f64>,
        ctx: Option<&Context>,
    ) -> Option<Reading> {
        let len = char_len(word);
        if len < 3 || !word.ends_with('s') {
            return None;
        }
        let stem = if !word.ends_with("ss") && self.is_known(drop_last_chars(word, 1)) {
            drop_last_chars(word, 1).to_string()
        } else if (word.ends_with("'s")
            || (len > 4 && word.ends_with("es") && !word.ends_with("ies")))
            && self.is_known(drop_last_chars(word, 2))
        {
            drop_last_chars(word, 2).to_string()
        } else if len > 4
            && word.ends_with("ies")
            && self.is_known(&format!("{}y", drop_last_chars(word, 3)))
        {
            format!("{}y", drop_last_chars(word, 3))
        } else {
            return None;
        };
        let (stem, rating) = self.lookup(&stem, tag, stress, ctx)?;
        self.plural(&stem).map(|ps| (ps, rating))
    }

    fn past(&self, stem: &str) -> Option<String> {
        let last = last_char(stem)?;
        Some(if "pkfθʃsʧ".contains(last) {
            format!("{stem}t")
        } else if last == 'd' {
            format!("{stem}ᵻd")
        } else if last != 't' {
            format!("{stem}d")
        } else if char_len(stem) < 2 {
            format!("{stem}ɪd")
        } else if second_last_char(stem).is_some_and(|c| US_TAUS.contains(c)) {
            format!("{}ɾᵻd", drop_last_chars(stem, 1))
        } else {
            format!("{stem}ᵻd")
        })
    }

    fn stem_ed(
        &self,
        word: &str,
        tag: Option<&str>,
        stress: Option<f64>,
        ctx: Option<&Context>,
    ) -> Option<Reading> {
        let len = char_len(word);
        if len < 4 || !word.ends_with('d') {
            return None;
        }
        let stem = if !word.ends_with("dd") && self.is_known(drop_last_chars(word, 1)) {
            drop_last_chars(word, 1)
        } else if len > 4
            && word.ends_with("ed")
            && !word.ends_with("eed")
            && self.is_known(drop_last_chars(word, 2))
        {
            drop_last_chars(word, 2)
        } else {
            return None;
        };
        let (stem, rating) = self.lookup(stem, tag, stress, ctx)?;
        self.past(&stem).map(|ps| (ps, rating))
    }

    fn progressive(&self, stem: &str) -> Option<String> {
        let last = last_char(stem)?;
        if char_len(stem) > 1
            && last == 't'
            && second_last_char(stem).is_some_and(|c| US_TAUS.contains(c))
        {
            return Some(format!("{}ɾɪŋ", drop_last_chars(stem, 1)));
        }
        Some(format!("{stem}ɪŋ"))
    }

    fn stem_ing(
        &self,
        word: &str,
        tag: Option<&str>,
        stress: Option<f64>,
        ctx: Option<&Context>,
    ) -> Option<Reading> {
        let len = char_len(word);
        if len < 5 || !word.ends_with("ing") {
            return None;
        }
        let base = drop_last_chars(word, 3);
        let doubled = {
            // ([bcdgklmnprstvxz])\1ing$ or cking$
            let chars: Vec<char> = word.chars().collect();
            let n = chars.len();
            (chars[n - 4] == chars[n - 5] && "bcdgklmnprstvxz".contains(chars[n - 4]))
                || word.ends_with("cking")
        };
        let stem = if len > 5 && self.is_known(base) {
            base.to_string()
        } else if self.is_known(&format!("{base}e")) {
            format!("{base}e")
        } else if len > 5 && doubled && self.is_known(drop_last_chars(word, 4)) {
            drop_last_chars(word, 4).to_string()
        } else {
            return None;
        };
        let (stem, rating) = self.lookup(&stem, tag, stress, ctx)?;
        self.progressive(&stem).map(|ps| (ps, rating))
    }

    fn get_word(
        &self,
        word: &str,
        tag: Option<&str>,
        stress: Option<f64>,
        ctx: &Context,
    ) -> Option<Reading> {
        if let Some(reading) = self.get_special_case(word, tag, stress, ctx) {
            return Some(reading);
        }
        let wl = lower(word);
        let mut word = word.to_string();
        let nonempty = |r: Option<Reading>| r.is_some_and(|(ps, _)| !ps.is_empty());
        if char_len(&word) > 1
            && is_alpha(&word.replace('\'', ""))
            && word != wl
            && (tag != Some("NNP") || char_len(&word) > 7)
            && !self.golds.contains(&word)
            && !self.silvers.contains(&word)
            && (word == upper(&word) || skip_chars(&word, 1) == lower(skip_chars(&word, 1)))
            && (self.golds.contains(&wl)
                || self.silvers.contains(&wl)
                || nonempty(self.stem_s(&wl, tag, stress, Some(ctx)))
                || nonempty(self.stem_ed(&wl, tag, stress, Some(ctx)))
                || nonempty(self.stem_ing(&wl, tag, stress, Some(ctx))))
        {
            word = wl;
        }
        if self.is_known(&word) {
            return self.lookup(&word, tag, stress, Some(ctx));
        }
        if let Some(stem) = word.strip_suffix("s'") {
            let possessive = format!("{stem}'s");
            if self.is_known(&possessive) {
                return self.lookup(&possessive, tag, stress, Some(ctx));
            }
        }
        if let Some(stem) = word.strip_suffix('\'')
            && self.is_known(stem)
        {
            return self.lookup(stem, tag, stress, Some(ctx));
        }
        if let Some(reading) = self.stem_s(&word, tag, stress, Some(ctx)) {
            return Some(reading);
        }
        if let Some(reading) = self.stem_ed(&word, tag, stress, Some(ctx)) {
            return Some(reading);
        }
        self.stem_ing(&word, tag, Some(stress.unwrap_or(0.5)), Some(ctx))
    }

    fn is_currency_amount(word: &str) -> bool {
        match word.split_once('.') {
            None => true,
            Some((_, cents)) => !cents.contains('.') && char_len(cents) < 3,
        }
    }

    /// Read a number token: "3rd", "1990", "$9.99", "1,250", "3.14", "-5", "90s".
    pub(crate) fn get_number(
        &self,
        word: &str,
        currency: Option<&str>,
        is_head: bool,
    ) -> Option<Reading> {
        let suffix_start = word
            .char_indices()
            .rev()
            .take_while(|&(_, c)| c.is_ascii_lowercase() || c == '\'')
            .last()
            .map(|(i, _)| i);
        let (mut word, suffix) = match suffix_start {
            Some(at) => (&word[..at], Some(&word[at..])),
            None => (word, None),
        };
        let is_ordinal = suffix.is_some_and(|s| ORDINALS.contains(&s));
        let mut result: Vec<Reading> = Vec::new();
        if let Some(rest) = word.strip_prefix('-') {
            result.extend(self.lookup("minus", None, None, None));
            word = rest;
        }
        // misaki's extend_num: the number's words (or `text` as given) looked up one by one.
        let extend_words = |text: &str, result: &mut Vec<Reading>| {
            for w in split_on_non_letters(text) {
                if w == "and" {
                    continue;
                }
                let stress = if w == "point" { Some(-2.0) } else { None };
                match self.lookup(w, None, stress, None) {
                    Some(reading) => result.push(reading),
                    None if w.is_empty() => result.push((String::new(), 3)),
                    None => {}
                }
            }
        };
        let extend_number = |digits: &str, result: &mut Vec<Reading>| {
            if let Some(n) = numbers::parse_digits(digits) {
                extend_words(&numbers::cardinal(n), result);
            }
        };

        if ascii_digits(word) && is_ordinal {
            extend_words(&numbers::ordinal(numbers::parse_digits(word)?), &mut result);
        } else if result.is_empty()
            && word.len() == 4
            && !currency.is_some_and(is_lexicon_currency)
            && ascii_digits(word)
        {
            extend_words(&numbers::year(numbers::parse_digits(word)?), &mut result);
        } else if !is_head && !word.contains('.') {
            let num = word.replace(',', "");
            let digits: Vec<String> = num.chars().map(String::from).collect();
            if num.starts_with('0') || digits.len() > 3 {
                for d in &digits {
                    extend_number(d, &mut result);
                }
            } else if digits.len() == 3 && !num.ends_with("00") {
                extend_number(&digits[0], &mut result);
                if digits[1] == "0" {
                    result.extend(self.lookup("O", None, Some(-2.0), None));
                    extend_number(&digits[2], &mut result);
                } else {
                    extend_number(skip_chars(&num, 1), &mut result);
                }
            } else {
                extend_number(&num, &mut result);
            }
        } else if word.matches('.').count() > 1 || !is_head {
            let plain = word.replace(',', "");
            for num in plain.split('.') {
                if num.is_empty() {
                } else if num.starts_with('0')
                    || (char_len(num) != 2 && num.chars().skip(1).any(|n| n != '0'))
                {
                    for d in num.chars() {
                        extend_number(&d.to_string(), &mut result);
                    }
                } else {
                    extend_number(num, &mut result);
                }
            }
        } else if let Some((unit, subunit)) = currency.and_then(currency_units)
            && Self::is_currency_amount(word)
        {
            let plain = word.replace(',', "");
            let mut pairs: Vec<(u128, &str)> = plain
                .split('.')
                .zip([unit, subunit])
                .map(|(num, unit)| (numbers::parse_digits(num).unwrap_or(0), unit))
                .collect();
            if pairs.len() > 1 {
                if pairs[1].0 == 0 {
                    pairs.truncate(1);
                } else if pairs[0].0 == 0 {
                    pairs.remove(0);
                }
            }
            for (i, (num, unit)) in pairs.into_iter().enumerate() {
                if i > 0 {
                    result.extend(self.lookup("and", None, None, None));
                }
                extend_words(&numbers::cardinal(num), &mut result);
                let name = if num != 1 && unit != "pence" {
                    self.stem_s(&format!("{unit}s"), None, None, None)
                } else {
                    self.lookup(unit, None, None, None)
                };
                result.extend(name);
            }
        } else {
            let text = if ascii_digits(word) {
                numbers::cardinal(numbers::parse_digits(word)?)
            } else if !word.contains('.') {
                let n = numbers::parse_digits(&word.replace(',', ""))?;
                if is_ordinal {
                    numbers::ordinal(n)
                } else {
                    numbers::cardinal(n)
                }
            } else {
                let plain = word.replace(',', "");
                if let Some(fraction) = plain.strip_prefix('.') {
                    let mut text = "point".to_string();
                    for d in fraction.chars() {
                        let n = numbers::parse_digits(&d.to_string())?;
                        text.push(' ');
                        text.push_str(&numbers::cardinal(n));
                    }
                    text
                } else {
                    if !plain.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                        return None;
                    }
                    numbers::decimal(&plain)
                }
            };
            extend_words(&text, &mut result);
        }
        if result.is_empty() {
            return None;
        }
        let rating = result.iter().map(|(_, r)| *r).min().unwrap_or(3);
        let joined = result
            .into_iter()
            .map(|(ps, _)| ps)
            .collect::<Vec<_>>()
            .join(" ");
        let ps = match suffix {
            Some("s" | "'s") => self.plural(&joined)?,
            Some("ed" | "'d") => self.past(&joined)?,
            Some("ing") => self.progressive(&joined)?,
            _ => joined,
        };
        Some((ps, rating))
    }

    fn append_currency(&self, ps: String, currency: Option<&str>) -> String {
        let Some((unit, _)) = currency.and_then(currency_units) else {
            return ps;
        };
        match self.stem_s(&format!("{unit}s"), None, None, None) {
            Some((name, _)) if !name.is_empty() => format!("{ps} {name}"),
            _ => ps,
        }
    }

    fn is_number(word: &str, is_head: bool) -> bool {
        if !word.chars().any(|c| c.is_ascii_digit()) {
            return false;
        }
        let mut word = word;
        for suffix in ["ing", "'d", "ed", "'s", "st", "nd", "rd", "th", "s"] {
            if let Some(stem) = word.strip_suffix(suffix) {
                word = stem;
                break;
            }
        }
        word.chars().enumerate().all(|(i, c)| {
            c.is_ascii_digit() || c == ',' || c == '.' || (is_head && i == 0 && c == '-')
        })
    }

    /// Phonemes for a token in its context (misaki's `Lexicon.__call__`).
    pub(crate) fn read(&self, tk: &Tok, ctx: &Context) -> Option<Reading> {
        let raw = tk.alias.as_deref().unwrap_or(&tk.text);
        let word: String = raw
            .replace(['\u{2018}', '\u{2019}'], "'")
            .nfkc()
            .map(numeric_if_needed)
            .collect();
        let stress = if word == lower(&word) {
            None
        } else if word == upper(&word) {
            Some(2.0)
        } else {
            Some(0.5)
        };
        let tag = Some(tk.tag.as_str());
        if let Some((ps, rating)) = self.get_word(&word, tag, stress, ctx) {
            let ps = self.append_currency(ps, tk.currency.as_deref());
            return Some((apply_stress(&ps, tk.stress), rating));
        }
        if Self::is_number(&word, tk.is_head) {
            let (ps, rating) = self.get_number(&word, tk.currency.as_deref(), tk.is_head)?;
            return Some((apply_stress(&ps, tk.stress), rating));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dict(entries: &[(&str, &str)]) -> Dict {
        Dict::new(
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), Entry::Plain(v.to_string())))
                .collect(),
        )
    }

    fn lexicon() -> Lexicon {
        let mut gold: Vec<(&str, &str)> = vec![
            ("book", "bˈʊk"),
            ("walk", "wˈɔk"),
            ("want", "wˈɑnt"),
            ("ten", "tˈɛn"),
            ("twenty", "twˈɛnti"),
            ("nine", "nˈIn"),
            ("ninety", "nˈIndi"),
            ("dollar", "dˈɑləɹ"),
            ("cent", "sˈɛnt"),
            ("and", "ænd"),
            ("point", "pˈYnt"),
            ("one", "wˈʌn"),
            ("two", "tˈu"),
            ("five", "fˈIv"),
            ("to", "tu"),
            ("am", "æm"),
        ];
        let letters = [("N", "ˈɛn"), ("A", "ˈA"), ("S", "ˈɛs")];
        gold.extend(letters);
        Lexicon::new(dict(&gold), dict(&[]))
    }

    fn tok(text: &str, tag: &str) -> Tok {
        Tok::new(text, tag, " ")
    }

    #[test]
    fn number_words_split_like_python() {
        assert_eq!(
            split_on_non_letters("one thousand, two-hundred"),
            ["one", "thousand", "two", "hundred"]
        );
        assert_eq!(split_on_non_letters(", a."), ["", "a", ""]);
    }

    #[test]
    fn stress_rules() {
        assert_eq!(apply_stress("bˈʊk", Some(-2.0)), "bʊk");
        assert_eq!(apply_stress("bˈʊk", Some(-1.0)), "bˌʊk");
        assert_eq!(apply_stress("ðə", Some(0.0)), "ðˌə");
        assert_eq!(apply_stress("bˌʊk", Some(2.0)), "bˈʊk");
        assert_eq!(apply_stress("mm", Some(2.0)), "mm");
        assert_eq!(apply_stress("ðə", None), "ðə");
    }

    #[test]
    fn stems_and_function_words() {
        let lex = lexicon();
        let ctx = Context::default();
        assert_eq!(
            lex.read(&tok("books", "NNS"), &ctx).map(|r| r.0),
            Some("bˈʊks".into())
        );
        assert_eq!(
            lex.read(&tok("walked", "VBD"), &ctx).map(|r| r.0),
            Some("wˈɔkt".into())
        );
        assert_eq!(
            lex.read(&tok("wanted", "VBD"), &ctx).map(|r| r.0),
            Some("wˈɑntᵻd".into())
        );
        assert_eq!(
            lex.read(&tok("booking", "VBG"), &ctx).map(|r| r.0),
            Some("bˈʊkɪŋ".into())
        );
        let before_vowel = Context {
            future_vowel: Some(true),
            future_to: false,
        };
        assert_eq!(
            lex.read(&tok("the", "DT"), &before_vowel).map(|r| r.0),
            Some("ði".into())
        );
        assert_eq!(
            lex.read(&tok("to", "TO"), &before_vowel).map(|r| r.0),
            Some("tʊ".into())
        );
        assert_eq!(
            lex.read(&tok("a", "DT"), &ctx).map(|r| r.0),
            Some("ɐ".into())
        );
        assert_eq!(
            lex.read(&tok("NSA", "NNP"), &ctx).map(|r| r.0),
            Some("ˌɛnˌɛsˈA".into())
        );
        assert_eq!(lex.read(&tok("zyxq", "NN"), &ctx), None);
    }

    #[test]
    fn numbers_and_money() {
        let lex = lexicon();
        let ctx = Context::default();
        assert_eq!(
            lex.read(&tok("10", "CD"), &ctx).map(|r| r.0),
            Some("tˈɛn".into())
        );
        let mut price = tok("9.99", "CD");
        price.currency = Some("$".into());
        assert_eq!(
            lex.read(&price, &ctx).map(|r| r.0),
            Some("nˈIn dˈɑləɹz ænd nˈIndi nˈIn sˈɛnts".into())
        );
        // Not a head (a number inside a word): three digits read as "two ten".
        assert_eq!(
            lex.get_number("210", None, false).map(|r| r.0),
            Some("tˈu tˈɛn".into())
        );
        // Decimals: "point" loses its stress.
        assert_eq!(
            lex.get_number("1.5", None, true).map(|r| r.0),
            Some("wˈʌn pYnt fˈIv".into())
        );
    }
}
