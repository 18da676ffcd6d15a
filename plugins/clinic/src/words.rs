//! Whisper transcripts as words: punctuation, capitals, "a.m.", "10am", "2.30" and
//! apostrophes normalised so that the parsers match phrases on plain lowercase words.

/// One word of a transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// As written, without surrounding punctuation (capitals and apostrophes kept).
    pub raw: String,
    /// Lowercase, apostrophes removed ("can't" → "cant", "o'clock" → "oclock").
    pub norm: String,
    /// Punctuation (`,` `.` `?` `!` `;`) followed the word.
    pub ends_clause: bool,
}

/// Splits a transcript into normalised words.
///
/// Letters and digits form words; a digit/letter boundary splits ("10am" → "10", "am");
/// ":" or "." between digits keeps a clock time together ("2.30" → "2:30"); "a.m."/"p.m."
/// become "am"/"pm"; everything else separates words.
pub fn words(text: &str) -> Vec<Word> {
    let chars: Vec<char> = text
        .chars()
        .map(|c| match c {
            '\u{2019}' | '\u{2018}' | '`' => '\'',
            other => other,
        })
        .collect();
    let mut out: Vec<Word> = Vec::new();
    let mut current = String::new();
    let flush = |current: &mut String, out: &mut Vec<Word>, ends_clause: bool| {
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
            out.push(Word {
                raw,
                norm,
                ends_clause,
            });
        }
    };
    for (i, &c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).and_then(|p| chars.get(p)).copied();
        let next = chars.get(i + 1).copied();
        let is_digit = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit());
        if c.is_alphanumeric() {
            let boundary = current
                .chars()
                .last()
                .is_some_and(|last| last.is_ascii_digit() != c.is_ascii_digit() && last != ':');
            if boundary {
                flush(&mut current, &mut out, false);
            }
            current.push(c);
        } else if (c == ':' || c == '.') && is_digit(prev) && is_digit(next) {
            current.push(':');
        } else if c == '\''
            && prev.is_some_and(char::is_alphabetic)
            && next.is_some_and(char::is_alphabetic)
        {
            current.push('\'');
        } else {
            flush(
                &mut current,
                &mut out,
                matches!(c, ',' | '.' | '?' | '!' | ';'),
            );
        }
    }
    flush(&mut current, &mut out, true);
    collapse_repeats(merge_meridiem(out))
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

/// "a" "m" → "am", "p" "m" → "pm" (from "a.m." or "a m").
fn merge_meridiem(words: Vec<Word>) -> Vec<Word> {
    let mut out: Vec<Word> = Vec::with_capacity(words.len());
    for word in words {
        if word.norm == "m"
            && let Some(last) = out.last_mut()
            && (last.norm == "a" || last.norm == "p")
        {
            last.norm.push('m');
            last.raw.push('m');
            last.ends_clause = word.ends_clause;
            continue;
        }
        out.push(word);
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    fn n(text: &str) -> Vec<String> {
        words(text).into_iter().map(|w| w.norm).collect()
    }

    #[test]
    fn normalises_whisper_punctuation() {
        assert_eq!(n("Tomorrow."), ["tomorrow"]);
        assert_eq!(n("10 a.m."), ["10", "am"]);
        assert_eq!(n("10am"), ["10", "am"]);
        assert_eq!(n("2:30 p.m."), ["2:30", "pm"]);
        assert_eq!(n("2:30pm"), ["2:30", "pm"]);
        assert_eq!(n("At 2.30, please!"), ["at", "2:30", "please"]);
        assert_eq!(
            n("Ten o'clock in the morning."),
            ["ten", "oclock", "in", "the", "morning"]
        );
        assert_eq!(n("I can’t breathe"), ["i", "cant", "breathe"]);
        assert_eq!(n("  --  "), Vec::<String>::new());
        assert_eq!(n("twenty-five"), ["twenty", "five"]);
    }

    #[test]
    fn keeps_raw_case_and_clause_ends() {
        let w = words("My name is John O'Brien, thanks.");
        assert_eq!(w[3].raw, "John");
        assert_eq!(w[4].raw, "O'Brien");
        assert_eq!(w[4].norm, "obrien");
        assert!(w[4].ends_clause);
        assert!(!w[3].ends_clause);
        assert!(w[5].ends_clause);
    }

    #[test]
    fn collapses_whisper_repetition_loops() {
        assert_eq!(n("Yes? Yes? Yes? Yes"), ["yes"]);
        assert_eq!(
            n("My name is John Smith. My name is John Smith. My name is"),
            ["my", "name", "is", "john", "smith"]
        );
        assert_eq!(n("The model, the model, the model,"), ["the", "model"]);
        assert_eq!(n("No. No, no. Tuesday."), ["no", "tuesday"]);
        assert_eq!(n("Ten, ten thirty."), ["ten", "ten", "thirty"]);
    }

    #[test]
    fn finds_phrases() {
        let w = words("I have chest pain.");
        let n = norms(&w);
        assert_eq!(find_phrase(&n, "chest pain"), Some(2));
        assert!(!contains_phrase(&n, "pain chest"));
        assert!(!contains_phrase(&n, ""));
        assert!(!contains_phrase(&n, "i have chest pain now"));
    }
}
