//! Text normalisation before tokenizing (hibari's `normalize.py`): readings the lexicon rules
//! cannot produce on their own: times, dates, units, abbreviations, other currencies, phone
//! numbers, ranges, fractions, symbols. Plain numbers (cardinals, ordinals, years, decimals,
//! $/£/€ amounts, percents) are left to the lexicon. The word tables come from hibari's
//! `normalize.json`.

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;

use fancy_regex::{Captures, Regex};
use serde::Deserialize;
use serde::de::{MapAccess, Visitor};

use super::HibariError;
use super::numbers;
use super::text::{capitalize, char_len, regex_escape, replace_all};

/// A JSON object read as key/value pairs in document order.
#[derive(Debug, Clone, Default)]
pub(crate) struct OrderedPairs<V>(pub Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedPairs<V> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PairsVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for PairsVisitor<V> {
            type Value = OrderedPairs<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut pairs = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, V>()? {
                    pairs.push((key, value));
                }
                Ok(OrderedPairs(pairs))
            }
        }
        deserializer.deserialize_map(PairsVisitor(PhantomData))
    }
}

/// hibari's `normalize.json`.
#[derive(Debug, Deserialize)]
pub(crate) struct NormalizeTables {
    /// "jan" → "January", in calendar order.
    pub months: OrderedPairs<String>,
    /// Titles expanded only before a capitalised word ("St Paul" → "Saint Paul").
    pub titles: HashMap<String, String>,
    pub abbreviations: HashMap<String, String>,
    /// Unit → [singular, plural].
    pub units: HashMap<String, [String; 2]>,
    /// Symbol → words, replaced in this order.
    pub symbols: OrderedPairs<String>,
    /// Currency → [singular, plural].
    pub currency: HashMap<String, [String; 2]>,
    pub roman_cardinal: Vec<String>,
    pub roman_ordinal: Vec<String>,
}

/// The compiled normaliser.
pub(crate) struct Normalizer {
    tables: NormalizeTables,
    month_names: Vec<String>,
    months: HashMap<String, String>,
    whitespace: Regex,
    time: Regex,
    date_us: Regex,
    date_iso: Regex,
    month_day: Regex,
    day_month: Regex,
    unit: Regex,
    degrees: Regex,
    cents: Regex,
    currency: Regex,
    big_money: Regex,
    title: Regex,
    abbreviation: Regex,
    number_sign: Regex,
    hash: Regex,
    roman_cardinal: Regex,
    roman_ordinal: Regex,
    phone: Regex,
    range: Regex,
    fraction: Regex,
    plus: Regex,
    space_before_punct: Regex,
    symbols: Vec<(Regex, String)>,
}

/// A regex alternation of literal words, longest first.
fn alternation<'a>(words: impl IntoIterator<Item = &'a str>) -> String {
    let mut words: Vec<&str> = words.into_iter().collect();
    words.sort_by_key(|w| std::cmp::Reverse(char_len(w)));
    words
        .iter()
        .map(|w| regex_escape(w))
        .collect::<Vec<_>>()
        .join("|")
}

const NUM: &str = r"\d+(?:,\d{3})*(?:\.\d+)?";
const ROMAN_NUMERAL: &str =
    r"((?=[IVXLC])M{0,3}(?:CM|CD|D?C{0,3})(?:XC|XL|L?X{0,3})(?:IX|IV|V?I{0,3}))";

fn group<'t>(caps: &Captures<'t, str>, i: usize) -> &'t str {
    caps.get(i).map_or("", |m| m.as_str())
}

fn plural<'w>(n_text: &str, words: &'w [String; 2]) -> &'w str {
    if matches!(n_text.replace(',', "").as_str(), "1" | "1.0" | "-1") {
        &words[0]
    } else {
        &words[1]
    }
}

fn roman_value(numeral: &str) -> u128 {
    let value = |c: char| match c {
        'I' => 1,
        'V' => 5,
        'X' => 10,
        'L' => 50,
        'C' => 100,
        'D' => 500,
        'M' => 1000,
        _ => 0,
    };
    let chars: Vec<char> = numeral.chars().collect();
    let mut total: i64 = 0;
    for (i, &c) in chars.iter().enumerate() {
        let v = value(c);
        if chars.get(i + 1).is_some_and(|&next| value(next) > v) {
            total -= v;
        } else {
            total += v;
        }
    }
    total.max(0) as u128
}

fn big_word(big: &str) -> String {
    match big.to_lowercase().as_str() {
        "k" => "thousand".to_string(),
        "m" => "million".to_string(),
        "b" => "billion".to_string(),
        _ => big.to_string(),
    }
}

impl Normalizer {
    /// Compile the normaliser's patterns around hibari's tables.
    pub(crate) fn new(tables: NormalizeTables) -> Result<Self, HibariError> {
        let compile = |what: &str, pattern: String| {
            Regex::new(&pattern).map_err(|e| HibariError::Pattern {
                what: format!("normaliser {what}"),
                detail: e.to_string(),
            })
        };
        let month_names: Vec<String> = tables.months.0.iter().map(|(_, v)| v.clone()).collect();
        let months: HashMap<String, String> = tables.months.0.iter().cloned().collect();
        let mut month_words: Vec<String> = month_names.clone();
        month_words.extend(tables.months.0.iter().map(|(k, _)| capitalize(k)));
        month_words.push("Sept".to_string());
        let months_alt = alternation(month_words.iter().map(String::as_str));
        let units_alt = alternation(tables.units.keys().map(String::as_str));
        let titles_alt = alternation(tables.titles.keys().map(String::as_str));
        let abbrev_alt = alternation(tables.abbreviations.keys().map(String::as_str));
        let roman_c_alt = alternation(tables.roman_cardinal.iter().map(String::as_str));
        let roman_o_alt = alternation(tables.roman_ordinal.iter().map(String::as_str));
        let mut symbols = Vec::new();
        for (symbol, word) in &tables.symbols.0 {
            let escaped = regex_escape(symbol);
            let pattern = if symbol.len() == 1 && "=<>~".contains(symbol.as_str()) {
                format!(r"(?<=\S) ?{escaped} ?(?=\S)")
            } else {
                escaped
            };
            let replacement = if word.is_empty() {
                " ".to_string()
            } else {
                format!(" {word} ")
            };
            symbols.push((compile("symbol", pattern)?, replacement));
        }
        Ok(Self {
            whitespace: compile("whitespace", r"\s+".to_string())?,
            time: compile(
                "times",
                r"\b(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s?([AaPp])\.?[Mm]\.?(?![A-Za-z]))?(?!\d)"
                    .to_string(),
            )?,
            date_us: compile(
                "dates",
                r"\b(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})\b".to_string(),
            )?,
            date_iso: compile("ISO dates", r"\b(\d{4})-(\d{2})-(\d{2})\b".to_string())?,
            month_day: compile(
                "month-day dates",
                format!(
                    r"\b({months_alt})\.? (\d{{1,2}})(?:st|nd|rd|th)?\b(?![\d:%])(,? \d{{4}}\b)?"
                ),
            )?,
            day_month: compile(
                "day-month dates",
                format!(r"\b(the )?(\d{{1,2}}) (?:of )?({months_alt})\b\.?"),
            )?,
            unit: compile(
                "units",
                format!(r"(?<![\w.])(-?{NUM})\s?({units_alt})(?![\w])"),
            )?,
            degrees: compile(
                "degrees",
                format!(r"(?<![\w.])(-?{NUM})\s?°\s?([CF])?(?![\w])"),
            )?,
            cents: compile("cents", format!(r"(?<![\w.])({NUM})\s?¢"))?,
            currency: compile(
                "currencies",
                format!(
                    r"(?<![\w])([¥₹₩]|Rs\.?|USD|EUR|GBP)\s?({NUM})(?:\s?(hundred|thousand|million|billion|trillion|[kKmMbB]\b))?"
                ),
            )?,
            big_money: compile(
                "large amounts",
                format!(r"([$£€])({NUM})\s?(hundred|thousand|million|billion|trillion|[kKmMbB]\b)"),
            )?,
            title: compile("titles", format!(r"\b({titles_alt})\.? (?=[A-Z])"))?,
            abbreviation: compile(
                "abbreviations",
                format!(r"(?<![\w.])({abbrev_alt})(?![\w])"),
            )?,
            number_sign: compile("No.", r"\b(No|Nos)\. ?(?=\d)".to_string())?,
            hash: compile("#", r"(?<![\w&])#(?=\d)".to_string())?,
            roman_cardinal: compile(
                "roman numerals",
                format!(r"\b({roman_c_alt}) {ROMAN_NUMERAL}\b(?![.'’]\w)"),
            )?,
            roman_ordinal: compile(
                "regnal numbers",
                format!(r"\b({roman_o_alt}) {ROMAN_NUMERAL}\b(?![.'’]\w)"),
            )?,
            phone: compile(
                "phone numbers",
                r"(?<![\w.\-])(?:\d{3}-)?\d{3}-\d{4}(?![\w.\-])".to_string(),
            )?,
            range: compile(
                "ranges",
                r"(?<![\w.\-])(\d{1,4})\s?[-–]\s?(\d{1,4})(?![\w.\-%])".to_string(),
            )?,
            fraction: compile(
                "fractions",
                r"(?<![\w./])(\d{1,2})/(\d{1,2})(?![\w./])".to_string(),
            )?,
            plus: compile("plus", r"(?<![\w+])\+(?=\d)".to_string())?,
            space_before_punct: compile("punctuation", r" +([,.;:!?])".to_string())?,
            symbols,
            month_names,
            months,
            tables,
        })
    }

    fn date(&self, year: Option<&str>, month: u32, day: u32) -> Option<String> {
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return None;
        }
        let name = self.month_names.get(month as usize - 1)?;
        let mut text = format!("{name} {}", numbers::ordinal(u128::from(day)));
        if let Some(year) = year {
            text.push_str(", ");
            text.push_str(year);
        }
        Some(text)
    }

    fn month_of(&self, word: &str) -> String {
        let key: String = word.to_lowercase().chars().take(3).collect();
        self.months
            .get(&key)
            .cloned()
            .unwrap_or_else(|| word.to_string())
    }

    fn time(caps: &Captures<'_, str>, text: &str) -> String {
        let whole = group(caps, 0);
        let parse = |s: &str| s.parse::<u128>().ok();
        let (Some(h), Some(mi)) = (parse(group(caps, 1)), parse(group(caps, 2))) else {
            return whole.to_string();
        };
        let sec = caps.get(3).map(|m| m.as_str());
        let sec_value = sec.and_then(parse);
        let ap = caps.get(4).map(|m| m.as_str());
        if h > 24 || mi > 59 || sec_value.is_some_and(|s| s > 59) {
            return whole.to_string();
        }
        let mut words = numbers::cardinal(h);
        if mi == 0 {
            if ap.is_none() && sec.is_none() {
                words.push_str(" o'clock");
            }
        } else if mi < 10 {
            words.push_str(" oh ");
            words.push_str(&numbers::cardinal(mi));
        } else {
            words.push(' ');
            words.push_str(&numbers::cardinal(mi));
        }
        if let Some(s) = sec_value {
            words.push_str(" and ");
            words.push_str(&numbers::cardinal(s));
            words.push_str(if s == 1 { " second" } else { " seconds" });
        }
        if let Some(ap) = ap {
            // Dotted so that the lexicon spells the letters.
            let end = caps.get(0).map_or(0, |m| m.end());
            let followed_by_dot = text[end..].starts_with('.');
            words.push(' ');
            words.push_str(&ap.to_uppercase());
            words.push_str(".M");
            if !followed_by_dot {
                words.push('.');
            }
        }
        words
    }

    /// Normalise one sentence or paragraph.
    pub(crate) fn normalize(&self, text: &str) -> String {
        let text = replace_all(&self.whitespace, text, |_| " ".to_string());
        let text = text.trim();
        if text.is_empty() {
            return String::new();
        }
        let text = text
            .replace('\u{a0}', " ")
            .replace('\u{2019}', "'")
            .replace('\u{2012}', "-")
            .replace('\u{2015}', "—");
        let text = replace_all(&self.time, &text, |c| Self::time(c, &text));
        let text = replace_all(&self.date_iso, &text, |c| {
            let (Ok(month), Ok(day)) = (group(c, 2).parse(), group(c, 3).parse()) else {
                return group(c, 0).to_string();
            };
            self.date(Some(group(c, 1)), month, day)
                .unwrap_or_else(|| group(c, 0).to_string())
        });
        let text = replace_all(&self.date_us, &text, |c| {
            let (Ok(a), Ok(b)) = (group(c, 1).parse::<u32>(), group(c, 2).parse::<u32>()) else {
                return group(c, 0).to_string();
            };
            let mut year = group(c, 3).to_string();
            if year.len() == 2 {
                let prefix = if year.parse::<u32>().unwrap_or(0) > 30 {
                    "19"
                } else {
                    "20"
                };
                year = format!("{prefix}{year}");
            }
            let (month, day) = if a <= 12 { (a, b) } else { (b, a) };
            self.date(Some(&year), month, day)
                .unwrap_or_else(|| group(c, 0).to_string())
        });
        let text = replace_all(&self.big_money, &text, |c| {
            let words = self.tables.currency.get(group(c, 1));
            let plural = words.map_or("", |w| w[1].as_str());
            format!("{} {} {plural}", group(c, 2), big_word(group(c, 3)))
        });
        let text = replace_all(&self.cents, &text, |c| {
            let n = group(c, 1);
            match self.tables.currency.get("¢") {
                Some(words) => format!("{n} {}", plural(n, words)),
                None => group(c, 0).to_string(),
            }
        });
        let text = replace_all(&self.currency, &text, |c| {
            let symbol = group(c, 1).trim_end_matches('.');
            let n = group(c, 2);
            let Some(words) = self.tables.currency.get(symbol) else {
                return group(c, 0).to_string();
            };
            match c.get(3) {
                Some(big) => format!("{n} {} {}", big_word(big.as_str()), words[1]),
                None => format!("{n} {}", plural(n, words)),
            }
        });
        let text = replace_all(&self.degrees, &text, |c| {
            let n = group(c, 1);
            let unit = if matches!(n.replace(',', "").as_str(), "1" | "1.0" | "-1") {
                "degree"
            } else {
                "degrees"
            };
            let scale = match group(c, 2) {
                "C" => " Celsius",
                "F" => " Fahrenheit",
                _ => "",
            };
            format!("{n} {unit}{scale}")
        });
        let text = replace_all(&self.unit, &text, |c| {
            let n = group(c, 1);
            match self.tables.units.get(group(c, 2)) {
                Some(words) => format!("{n} {}", plural(n, words)),
                None => group(c, 0).to_string(),
            }
        });
        let text = replace_all(&self.month_day, &text, |c| {
            let Ok(day) = group(c, 2).parse::<u32>() else {
                return group(c, 0).to_string();
            };
            if !(1..=31).contains(&day) {
                return group(c, 0).to_string();
            }
            format!(
                "{} {}{}",
                self.month_of(group(c, 1)),
                numbers::ordinal(u128::from(day)),
                group(c, 3)
            )
        });
        let text = replace_all(&self.day_month, &text, |c| {
            let Ok(day) = group(c, 2).parse::<u32>() else {
                return group(c, 0).to_string();
            };
            if !(1..=31).contains(&day) {
                return group(c, 0).to_string();
            }
            format!(
                "the {} of {}",
                numbers::ordinal(u128::from(day)),
                self.month_of(group(c, 3))
            )
        });
        let text = replace_all(&self.title, &text, |c| {
            let title = group(c, 1);
            let word = self.tables.titles.get(title).map_or(title, String::as_str);
            format!("{word} ")
        });
        let text = replace_all(&self.abbreviation, &text, |c| {
            let abbreviation = group(c, 1);
            let mut word = self
                .tables
                .abbreviations
                .get(abbreviation)
                .cloned()
                .unwrap_or_else(|| abbreviation.to_string());
            let at_end = c.get(0).is_some_and(|m| m.end() == text.len());
            if at_end && abbreviation.ends_with('.') {
                word.push('.');
            }
            word
        });
        let text = replace_all(&self.number_sign, &text, |c| {
            if group(c, 1) == "No" {
                "Number ".to_string()
            } else {
                "Numbers ".to_string()
            }
        });
        let text = replace_all(&self.hash, &text, |_| "number ".to_string());
        let text = replace_all(&self.roman_cardinal, &text, |c| {
            format!("{} {}", group(c, 1), roman_value(group(c, 2)))
        });
        let text = replace_all(&self.roman_ordinal, &text, |c| {
            format!(
                "{} the {}",
                group(c, 1),
                numbers::ordinal(roman_value(group(c, 2)))
            )
        });
        let text = replace_all(&self.phone, &text, |c| {
            let spaced: Vec<String> = group(c, 0)
                .replace('-', ", ")
                .chars()
                .map(String::from)
                .collect();
            spaced.join(" ")
        });
        let text = replace_all(&self.fraction, &text, |c| {
            let (Ok(a), Ok(b)) = (group(c, 1).parse::<u32>(), group(c, 2).parse::<u32>()) else {
                return group(c, 0).to_string();
            };
            if 0 < a && a < b && b <= 10 {
                let unit = match b {
                    2 => "half",
                    3 => "third",
                    4 => "quarter",
                    5 => "fifth",
                    6 => "sixth",
                    7 => "seventh",
                    8 => "eighth",
                    9 => "ninth",
                    _ => "tenth",
                };
                if unit == "half" {
                    return if a == 1 {
                        "one half".to_string()
                    } else {
                        format!("{a} halves")
                    };
                }
                return format!("{a} {unit}{}", if a == 1 { "" } else { "s" });
            }
            if (1..=12).contains(&a) && (1..=31).contains(&b) {
                return self
                    .date(None, a, b)
                    .unwrap_or_else(|| group(c, 0).to_string());
            }
            format!("{a} slash {b}")
        });
        let text = replace_all(&self.range, &text, |c| {
            format!("{} to {}", group(c, 1), group(c, 2))
        });
        let mut text = replace_all(&self.plus, &text, |_| "plus ".to_string());
        for ((symbol, _), (pattern, replacement)) in self.tables.symbols.0.iter().zip(&self.symbols)
        {
            if text.contains(symbol.as_str()) {
                text = replace_all(pattern, &text, |_| replacement.clone());
            }
        }
        let text = replace_all(&self.whitespace, &text, |_| " ".to_string());
        let text = replace_all(&self.space_before_punct, &text, |c| group(c, 1).to_string());
        text.trim().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> OrderedPairs<String> {
        OrderedPairs(
            items
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn normalizer() -> Normalizer {
        let months = [
            ("jan", "January"),
            ("feb", "February"),
            ("mar", "March"),
            ("apr", "April"),
            ("may", "May"),
            ("jun", "June"),
            ("jul", "July"),
            ("aug", "August"),
            ("sep", "September"),
            ("oct", "October"),
            ("nov", "November"),
            ("dec", "December"),
        ];
        let two = |a: &str, b: &str| [a.to_string(), b.to_string()];
        Normalizer::new(NormalizeTables {
            months: pairs(&months),
            titles: [("Dr".to_string(), "Dr".to_string())].into_iter().collect(),
            abbreviations: [("approx.".to_string(), "approximately".to_string())]
                .into_iter()
                .collect(),
            units: [("km".to_string(), two("kilometer", "kilometers"))]
                .into_iter()
                .collect(),
            symbols: pairs(&[("=", "equals"), ("™", "")]),
            currency: [
                ("₹".to_string(), two("rupee", "rupees")),
                ("$".to_string(), two("dollar", "dollars")),
            ]
            .into_iter()
            .collect(),
            roman_cardinal: vec!["Chapter".to_string()],
            roman_ordinal: vec!["Henry".to_string()],
        })
        .expect("normaliser patterns compile")
    }

    #[test]
    fn times_dates_and_units() {
        let n = normalizer();
        assert_eq!(n.normalize("Come at 9:30am."), "Come at nine thirty A.M.");
        assert_eq!(n.normalize("at 10:00"), "at ten o'clock");
        assert_eq!(n.normalize("on 10/12/2019"), "on October twelfth, 2019");
        assert_eq!(n.normalize("on Jan 5th"), "on January fifth");
        assert_eq!(n.normalize("It is 5km away"), "It is 5 kilometers away");
        assert_eq!(n.normalize("1 km"), "1 kilometer");
    }

    #[test]
    fn money_phones_ranges_and_symbols() {
        let n = normalizer();
        assert_eq!(n.normalize("It costs ₹500"), "It costs 500 rupees");
        assert_eq!(n.normalize("$3.2 billion"), "3.2 billion dollars");
        assert_eq!(
            n.normalize("Call 555-123-4567 now"),
            "Call 5 5 5, 1 2 3, 4 5 6 7 now"
        );
        assert_eq!(n.normalize("open 9-5"), "open 9 to 5");
        assert_eq!(n.normalize("a=b"), "a equals b");
        assert_eq!(
            n.normalize("Chapter IV of Henry VIII"),
            "Chapter 4 of Henry the eighth"
        );
        assert_eq!(
            n.normalize("approx. 3/4 done"),
            "approximately 3 quarters done"
        );
        assert_eq!(n.normalize("   "), "");
    }
}
