//! Whisper transcripts as words: punctuation, capitals, apostrophes and whisper tiny's
//! repetition loops normalised so that the parsers match phrases on plain lowercase words.
//! (The same approach as the clinic plugin's.)

/// One word of a transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// As written, without surrounding punctuation (capitals and apostrophes kept).
    pub raw: String,
    /// Lowercase, apostrophes removed ("that's" → "thats", "don't" → "dont").
    pub norm: String,
    /// Punctuation (`,` `.` `?` `!` `;`) followed the word.
    pub ends_clause: bool,
    /// Byte offset of the word in the transcript.
    pub start: usize,
    /// Byte offset just past the word in the transcript.
    pub end: usize,
}

/// Splits a transcript into normalised words.
///
/// Letters and digits form words; a digit/letter boundary splits ("2dosas" → "2", "dosas");
/// everything else separates words ("check-in" → "check", "in").
pub fn words(text: &str) -> Vec<Word> {
    let chars: Vec<(usize, char)> = text
        .char_indices()
        .map(|(at, c)| match c {
            '\u{2019}' | '\u{2018}' | '`' => (at, '\''),
            other => (at, other),
        })
        .collect();
    let mut out: Vec<Word> = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    let flush = |current: &mut String, out: &mut Vec<Word>, start: usize, ends_clause: bool| {
        if current.is_empty() {
            if ends_clause && let Some(last) = out.last_mut() {
                last.ends_clause = true;
            }
            return;
        }
        let raw = std::mem::take(current);
        let norm: String = raw
            .chars()
            .filter(|c| *c != '\'')
            .flat_map(char::to_lowercase)
            .collect();
        if !norm.is_empty() {
            let end = start + raw.len();
            out.push(Word {
                raw,
                norm,
                ends_clause,
                start,
                end,
            });
        }
    };
    for (i, &(at, c)) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).and_then(|p| chars.get(p)).map(|&(_, c)| c);
        let next = chars.get(i + 1).map(|&(_, c)| c);
        if c.is_alphanumeric() {
            let boundary = current
                .chars()
                .last()
                .is_some_and(|last| last.is_ascii_digit() != c.is_ascii_digit());
            if boundary {
                flush(&mut current, &mut out, start, false);
            }
            if current.is_empty() {
                start = at;
            }
            current.push(c);
        } else if c == '\''
            && prev.is_some_and(char::is_alphabetic)
            && next.is_some_and(char::is_alphabetic)
        {
            current.push('\'');
        } else {
            flush(
                &mut current,
                &mut out,
                start,
                matches!(c, ',' | '.' | '?' | '!' | ';'),
            );
        }
    }
    flush(&mut current, &mut out, start, true);
    drop_repeated_sentence(collapse_repeats(out))
}

/// Drops clauses that repeat the one before ("Yes? Yes? Yes?" → "Yes"), and a cut-off
/// repetition at the end: whisper tiny sometimes loops on short utterances.
fn collapse_repeats(words: Vec<Word>) -> Vec<Word> {
    let mut clauses: Vec<Vec<Word>> = Vec::new();
    let mut current = Vec::new();
    for word in words {
        let ends = word.ends_clause;
        current.push(word);
        if ends {
            clauses.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        clauses.push(current);
    }
    let same = |a: &[Word], b: &[Word]| {
        a.len() <= b.len() && a.iter().zip(b).all(|(x, y)| x.norm == y.norm)
    };
    let mut kept: Vec<Vec<Word>> = Vec::new();
    let count = clauses.len();
    for (i, clause) in clauses.into_iter().enumerate() {
        let repeat = kept.last().is_some_and(|previous: &Vec<Word>| {
            (clause.len() == previous.len() || i + 1 == count) && same(&clause, previous)
        });
        if !repeat {
            kept.push(clause);
        }
    }
    kept.into_iter().flatten().collect()
}

/// "12 MG Road, Bangalore. 12 MG Road, Bangalore. 12 MG" → "12 MG Road, Bangalore": an
/// utterance that is one stretch of clauses said again and again (the last time perhaps cut
/// off) keeps the first time only.
fn drop_repeated_sentence(mut words: Vec<Word>) -> Vec<Word> {
    let len = words.len();
    // A period ends a clause, or is long enough (or repeated often enough) that it cannot be
    // a natural repeat: whisper loops without punctuation too.
    let period = (1..=len / 2).find(|&p| {
        (words[p - 1].ends_clause || p >= 3 || (p == 2 && len >= 3 * p))
            && (p..len).all(|i| {
                let (said, first) = (&words[i].norm, &words[i - p].norm);
                said == first || (i + 1 == len && first.starts_with(said.as_str()))
            })
    });
    if let Some(p) = period {
        words.truncate(p);
    }
    words
}

/// The normalised words of a transcript, for phrase matching.
pub fn norms(words: &[Word]) -> Vec<&str> {
    words.iter().map(|w| w.norm.as_str()).collect()
}

/// Index of the first occurrence of `phrase` (space-separated normalised words) in `words`.
pub fn find_phrase(words: &[&str], phrase: &str) -> Option<usize> {
    let needle: Vec<&str> = phrase.split_whitespace().collect();
    if needle.is_empty() || needle.len() > words.len() {
        return None;
    }
    (0..=words.len() - needle.len()).find(|&i| words[i..i + needle.len()] == needle[..])
}

/// Whether `phrase` occurs in `words`.
pub fn contains_phrase(words: &[&str], phrase: &str) -> bool {
    find_phrase(words, phrase).is_some()
}

/// The stretch of `text` that `words` (taken from it, in order) cover, as the caller said it.
pub fn source_text<'t>(text: &'t str, words: &[Word]) -> &'t str {
    match (words.first(), words.last()) {
        (Some(first), Some(last)) => text.get(first.start..last.end).unwrap_or(""),
        _ => "",
    }
}

/// Levenshtein distance between two short strings, in characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

fn unit_word(word: &str) -> Option<u32> {
    const UNITS: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    UNITS.iter().position(|u| *u == word).map(|p| p as u32)
}

fn tens_word(word: &str) -> Option<u32> {
    match word {
        "twenty" => Some(20),
        "thirty" => Some(30),
        "forty" => Some(40),
        "fifty" => Some(50),
        "sixty" => Some(60),
        "seventy" => Some(70),
        "eighty" => Some(80),
        "ninety" => Some(90),
        _ => None,
    }
}

/// A count at `i`: digits ("2"), number words ("two", "twenty five"), "a"/"an"/"single",
/// "a couple of" (2), "a dozen" (12); value and number of words used.
pub fn count_at(n: &[&str], i: usize) -> Option<(u32, usize)> {
    let word = *n.get(i)?;
    if !word.is_empty() && word.len() <= 3 && word.chars().all(|c| c.is_ascii_digit()) {
        return word.parse().ok().map(|v| (v, 1));
    }
    if matches!(word, "a" | "an") {
        return match n.get(i + 1).copied() {
            Some("couple") => Some((2, if n.get(i + 2) == Some(&"of") { 3 } else { 2 })),
            Some("dozen") => Some((12, 2)),
            _ => Some((1, 1)),
        };
    }
    if matches!(word, "single" | "another") {
        return Some((1, 1));
    }
    if word == "dozen" {
        return Some((12, 1));
    }
    if let Some(v) = unit_word(word) {
        return Some((v, 1));
    }
    let tens = tens_word(word)?;
    match n.get(i + 1).and_then(|w| unit_word(w)) {
        Some(unit) if (1..10).contains(&unit) => Some((tens + unit, 2)),
        _ => Some((tens, 1)),
    }
}

/// How a count is spoken: "one" to "twenty" in words, larger counts in digits.
pub fn spoken_count(count: u32) -> String {
    const WORDS: [&str; 21] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "twenty",
    ];
    WORDS
        .get(count as usize)
        .map(|w| w.to_string())
        .unwrap_or_else(|| count.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(text: &str) -> Vec<String> {
        words(text).into_iter().map(|w| w.norm).collect()
    }

    #[test]
    fn normalises_whisper_punctuation() {
        assert_eq!(n("That's all."), ["thats", "all"]);
        assert_eq!(n("2 masala dosas"), ["2", "masala", "dosas"]);
        assert_eq!(n("2dosas"), ["2", "dosas"]);
        assert_eq!(n("I don’t want it"), ["i", "dont", "want", "it"]);
        assert_eq!(n("  --  "), Vec::<String>::new());
        assert_eq!(n("take-away"), ["take", "away"]);
    }

    #[test]
    fn collapses_whisper_repetition_loops() {
        assert_eq!(n("Yes? Yes? Yes? Yes"), ["yes"]);
        assert_eq!(
            n("One coffee, please. One coffee, please. One coffee"),
            ["one", "coffee", "please"]
        );
        assert_eq!(n("No. No, no. Pickup."), ["no", "pickup"]);
        assert_eq!(
            n("12 MG Road, Bangalore. 12 MG Road, Bangalore. 12 MG"),
            ["12", "mg", "road", "bangalore"]
        );
        assert_eq!(n("Two dosas, two dosas"), ["two", "dosas"]);
        assert_eq!(
            n("My name is Priya My name is Priya My name is Pri"),
            ["my", "name", "is", "priya"]
        );
        assert_eq!(n("very very spicy"), ["very", "very", "spicy"]);
        assert_eq!(n("no no"), ["no", "no"]);
    }

    #[test]
    fn keeps_source_offsets() {
        let text = "It's 12, MG Road, flat 4B.";
        let w = words(text);
        assert_eq!(source_text(text, &w[1..]), "12, MG Road, flat 4B");
        assert_eq!(w[0].raw, "It's");
        assert_eq!(source_text(text, &[]), "");
        let text = "Café 9";
        let w = words(text);
        assert_eq!(source_text(text, &w), "Café 9");
    }

    #[test]
    fn counts() {
        let c = |text: &str| {
            let w = words(text);
            count_at(&norms(&w), 0)
        };
        assert_eq!(c("two dosas"), Some((2, 1)));
        assert_eq!(c("2 dosas"), Some((2, 1)));
        assert_eq!(c("a coffee"), Some((1, 1)));
        assert_eq!(c("an idli"), Some((1, 1)));
        assert_eq!(c("a couple of samosas"), Some((2, 3)));
        assert_eq!(c("a dozen samosas"), Some((12, 2)));
        assert_eq!(c("twenty five samosas"), Some((25, 2)));
        assert_eq!(c("dosa"), None);
        assert_eq!(spoken_count(2), "two");
        assert_eq!(spoken_count(25), "25");
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("paneer tikka", "pane tikka"), 2);
        assert_eq!(edit_distance("lassi", "lassie"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("dosa", "dosa"), 0);
    }
}
