//! Sentence chunking of text that arrives in pieces (LLM token deltas), sans-IO.
//!
//! [`SentenceChunker::push`] returns each sentence as soon as its end is certain, so it can
//! be synthesized while the model is still writing the next one. A sentence ends at `.`,
//! `!`, `?`, `।`, `॥` or `…` followed by whitespace (closing quotes and brackets may come in
//! between), or at a line break. Not at:
//!
//! * decimals, times and addresses without a space after the point (`10.30`, `example.com`);
//! * titles and fixed abbreviations (`Dr.`, `Mr.`, `Mrs.`, `Prof.`, `Rs.`, `e.g.`, `i.e.`, …)
//!   and single-letter initials (`A. Kumar`);
//! * the point of a list number at the start of a piece (`1. Morning`);
//! * a point followed by a lower-case word (`9 a.m. tomorrow`, `etc. and`, `Hmm... let me`):
//!   after a point the chunker waits for the next word before it decides.
//!
//! Long text is cut earlier so that the first audio is not delayed: the first piece of a
//! reply may end at a comma, semicolon or colon once it is
//! [`first_chunk_min_chars`](ChunkerConfig::first_chunk_min_chars) long, any sentence at such
//! a mark once it is [`soft_max_chars`](ChunkerConfig::soft_max_chars) long, and a sentence
//! with no mark at all at the last space before
//! [`hard_max_chars`](ChunkerConfig::hard_max_chars).
//!
//! The result does not depend on how the text was split into deltas.

/// Where [`SentenceChunker`] cuts long text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkerConfig {
    /// The first piece of a reply may end at a comma, semicolon or colon once it is at
    /// least this many characters long (to start speaking sooner).
    pub first_chunk_min_chars: usize,
    /// A sentence at least this long ends at its next comma, semicolon or colon.
    pub soft_max_chars: usize,
    /// A sentence this long with no such mark is cut at its last space (or mid-word if it
    /// has none).
    pub hard_max_chars: usize,
}

impl Default for ChunkerConfig {
    fn default() -> Self {
        ChunkerConfig {
            first_chunk_min_chars: 40,
            soft_max_chars: 120,
            hard_max_chars: 250,
        }
    }
}

/// Splits streamed text into sentences for text-to-speech. One per reply; reusable after
/// [`finish`](Self::finish) or [`reset`](Self::reset).
#[derive(Debug, Clone, Default)]
pub struct SentenceChunker {
    config: ChunkerConfig,
    /// Text not yet returned; never starts with whitespace.
    buffer: String,
    /// Whether a piece of the current reply was returned (the first-piece rule is over).
    emitted_any: bool,
}

/// Words that a point after them does not end a sentence (compared in lower case).
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "st", "sr", "jr", "smt", "shri", "sri", "mt", "rs", "vs",
    "e.g", "i.e", "cf", "approx", "capt", "col", "gen", "lt", "sgt", "rev", "hon", "fig", "dept",
    "govt", "ltd", "inc", "co",
];

/// Characters that end a sentence when whitespace follows.
fn is_terminal(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '।' | '॥' | '…')
}

/// Terminals after which the next word must be seen before deciding.
fn is_point(c: char) -> bool {
    matches!(c, '.' | '…')
}

/// Characters that may sit between a terminal and the whitespace after it.
fn is_closing(c: char) -> bool {
    matches!(
        c,
        '"' | '\'' | '”' | '’' | ')' | ']' | '}' | '»' | '*' | '_'
    )
}

/// Marks where a long sentence may be cut.
fn is_clause_mark(c: char) -> bool {
    matches!(c, ',' | ';' | ':' | '،' | '、')
}

/// Whether `text` has something to say (a letter or digit).
fn is_speakable(text: &str) -> bool {
    text.chars().any(char::is_alphanumeric)
}

impl SentenceChunker {
    /// A chunker with the given limits.
    pub fn new(config: ChunkerConfig) -> Self {
        SentenceChunker {
            config,
            buffer: String::new(),
            emitted_any: false,
        }
    }

    /// Adds the next piece of text; returns the sentences it completed, in order (trimmed,
    /// each with at least one letter or digit).
    pub fn push(&mut self, delta: &str) -> Vec<String> {
        if self.buffer.is_empty() {
            self.buffer.push_str(delta.trim_start());
        } else {
            self.buffer.push_str(delta);
        }
        let mut sentences = Vec::new();
        while let Some(end) = self.next_cut() {
            let sentence = self.buffer[..end].trim().to_owned();
            let rest_start = self.buffer[end..]
                .find(|c: char| !c.is_whitespace())
                .map_or(self.buffer.len(), |offset| end + offset);
            self.buffer.drain(..rest_start);
            if is_speakable(&sentence) {
                self.emitted_any = true;
                sentences.push(sentence);
            }
        }
        sentences
    }

    /// Ends the reply: returns what is left (if it has anything to say) and makes the
    /// chunker ready for the next reply.
    pub fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.buffer);
        self.emitted_any = false;
        let rest = rest.trim();
        is_speakable(rest).then(|| rest.to_owned())
    }

    /// Drops the pending text (e.g. when the caller barged in) and starts a new reply.
    pub fn reset(&mut self) {
        self.buffer.clear();
        self.emitted_any = false;
    }

    /// The text received but not yet returned.
    pub fn pending(&self) -> &str {
        &self.buffer
    }

    /// The byte offset where the first complete piece of the buffer ends, if one does.
    fn next_cut(&self) -> Option<usize> {
        let chars: Vec<(usize, char)> = self.buffer.char_indices().collect();
        let n = chars.len();
        let byte_at = |index: usize| chars.get(index).map_or(self.buffer.len(), |&(b, _)| b);
        let clause_threshold = if self.emitted_any {
            self.config.soft_max_chars
        } else {
            self.config
                .first_chunk_min_chars
                .min(self.config.soft_max_chars)
        };
        let mut i = 0;
        while i < n {
            let c = chars[i].1;
            if c == '\n' && i > 0 {
                return Some(byte_at(i));
            }
            if is_terminal(c) {
                let mut run_end = i;
                while run_end + 1 < n && is_terminal(chars[run_end + 1].1) {
                    run_end += 1;
                }
                let mut after = run_end + 1;
                while after < n && is_closing(chars[after].1) {
                    after += 1;
                }
                if after == n {
                    // The next character decides (a space, another point, a digit…).
                    return None;
                }
                if !chars[after].1.is_whitespace() {
                    i = after;
                    continue;
                }
                let points_only = chars[i..=run_end].iter().all(|&(_, c)| is_point(c));
                if points_only {
                    let single_point = run_end == i && chars[i].1 == '.';
                    let list_number = chars[..i].iter().all(|&(_, c)| c.is_ascii_digit());
                    if single_point && (list_number || self.is_abbreviation(&chars[..i])) {
                        i = after;
                        continue;
                    }
                    let mut next_word = after;
                    while next_word < n && chars[next_word].1.is_whitespace() {
                        next_word += 1;
                    }
                    let line_break = chars[after..next_word].iter().any(|&(_, c)| c == '\n');
                    if !line_break {
                        if next_word == n {
                            // Wait for the next word: lower case continues the sentence.
                            return None;
                        }
                        if chars[next_word].1.is_lowercase() {
                            i = next_word;
                            continue;
                        }
                    }
                }
                return Some(byte_at(after));
            }
            let length = i + 1;
            if is_clause_mark(c)
                && length >= clause_threshold
                && chars
                    .get(i + 1)
                    .is_some_and(|&(_, next)| next.is_whitespace())
            {
                return Some(byte_at(i + 1));
            }
            if length >= self.config.hard_max_chars.max(1) {
                let last_space = chars[1..=i]
                    .iter()
                    .rposition(|&(_, c)| c.is_whitespace())
                    .map(|position| position + 1);
                return Some(byte_at(last_space.unwrap_or(i + 1)));
            }
            i += 1;
        }
        None
    }

    /// Whether the word that ends right before a point (`before` is the text up to it) is
    /// an abbreviation or an initial.
    fn is_abbreviation(&self, before: &[(usize, char)]) -> bool {
        let start = before
            .iter()
            .rposition(|&(_, c)| c.is_whitespace() || matches!(c, '(' | '[' | '"' | '\'' | '“'))
            .map_or(0, |position| position + 1);
        let word: String = before[start..]
            .iter()
            .flat_map(|&(_, c)| c.to_lowercase())
            .collect();
        let mut letters = word.chars();
        let single_letter =
            matches!((letters.next(), letters.next()), (Some(c), None) if c.is_alphabetic());
        single_letter || ABBREVIATIONS.contains(&word.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pushes all deltas and finishes; returns every piece in order.
    fn chunk_all(deltas: &[&str]) -> Vec<String> {
        let mut chunker = SentenceChunker::default();
        let mut out = Vec::new();
        for delta in deltas {
            out.extend(chunker.push(delta));
        }
        out.extend(chunker.finish());
        out
    }

    fn whole(text: &str) -> Vec<String> {
        chunk_all(&[text])
    }

    /// The text pushed one character at a time.
    fn char_by_char(text: &str) -> Vec<String> {
        let pieces: Vec<String> = text.chars().map(String::from).collect();
        let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
        chunk_all(&refs)
    }

    /// Every way of splitting `text` in two (at char boundaries) gives the same result as
    /// pushing it whole, and so does pushing it one character at a time.
    fn assert_split_independent(text: &str) {
        let expected = whole(text);
        assert_eq!(char_by_char(text), expected, "char by char: {text:?}");
        for (split, _) in text.char_indices().skip(1) {
            let (a, b) = text.split_at(split);
            assert_eq!(chunk_all(&[a, b]), expected, "split {a:?} | {b:?}");
        }
    }

    #[test]
    fn sentences_come_out_as_soon_as_the_next_word_starts() {
        let mut chunker = SentenceChunker::default();
        assert!(chunker.push("Hel").is_empty());
        assert!(chunker.push("lo wor").is_empty());
        assert!(chunker.push("ld.").is_empty(), "could be 'world.com'");
        assert_eq!(chunker.push(" How"), vec!["Hello world."]);
        assert!(chunker.push(" are you").is_empty());
        // `?` and `!` need no look-ahead beyond the space.
        assert_eq!(chunker.push("? "), vec!["How are you?"]);
        assert!(chunker.push("Fine").is_empty());
        assert_eq!(chunker.push("! Bye"), vec!["Fine!"]);
        assert_eq!(chunker.pending(), "Bye");
        assert_eq!(chunker.finish().as_deref(), Some("Bye"));
        assert_eq!(chunker.finish(), None);
    }

    #[test]
    fn decimals_times_and_abbreviations_do_not_end_sentences() {
        assert_eq!(
            whole(
                "Dr. Sharma sees you at 10.30 on Monday. Mr. and Mrs. Rao come at 11. Bring e.g. your reports, i.e. the X-ray. Fee is Rs. 500."
            ),
            vec![
                "Dr. Sharma sees you at 10.30 on Monday.",
                "Mr. and Mrs. Rao come at 11.",
                "Bring e.g. your reports, i.e. the X-ray.",
                "Fee is Rs. 500."
            ]
        );
        assert_eq!(
            whole("Ask for A. Kumar at reception. Visit example.com today."),
            vec!["Ask for A. Kumar at reception.", "Visit example.com today."]
        );
    }

    #[test]
    fn lower_case_after_a_point_continues_the_sentence() {
        assert_eq!(
            whole("We open at 9 a.m. tomorrow. Closing is at 5 p.m. See you!"),
            vec![
                "We open at 9 a.m. tomorrow.",
                "Closing is at 5 p.m.",
                "See you!"
            ]
        );
        assert_eq!(
            whole("Hmm... let me check. Okay... Found it."),
            vec!["Hmm... let me check.", "Okay...", "Found it."]
        );
    }

    #[test]
    fn ellipsis_split_across_deltas_is_one_terminal() {
        let mut chunker = SentenceChunker::default();
        assert!(chunker.push("Well.").is_empty());
        assert!(chunker.push(".").is_empty());
        assert!(chunker.push(". ").is_empty());
        assert_eq!(chunker.push("I think so"), vec!["Well..."]);
        assert_eq!(chunker.finish().as_deref(), Some("I think so"));
        assert_eq!(
            chunk_all(&["Wait", "…", " Yes", ".", "."]),
            vec!["Wait…", "Yes.."]
        );
    }

    #[test]
    fn quotes_and_brackets_after_the_terminal() {
        assert_eq!(
            whole("He said \"Yes.\" Then he left. (That was odd.) **Done.** Next"),
            vec![
                "He said \"Yes.\"",
                "Then he left.",
                "(That was odd.)",
                "**Done.**",
                "Next"
            ]
        );
    }

    #[test]
    fn hindi_and_other_scripts() {
        assert_eq!(
            whole("नमस्ते। आप कैसे हैं? मैं ठीक हूँ॥ धन्यवाद"),
            vec!["नमस्ते।", "आप कैसे हैं?", "मैं ठीक हूँ॥", "धन्यवाद"]
        );
        // A point followed by Devanagari (no case) ends the sentence.
        assert_eq!(
            whole("Your slot is booked. आपका धन्यवाद."),
            vec!["Your slot is booked.", "आपका धन्यवाद."]
        );
        assert_split_independent("नमस्ते। आप कैसे हैं? ठीक। 😀 Ok.");
    }

    #[test]
    fn line_breaks_end_pieces_and_unspeakable_pieces_are_dropped() {
        assert_eq!(
            whole("Options:\n1. Morning\n2. Evening\n\n---\nPick one"),
            vec!["Options:", "1. Morning", "2. Evening", "Pick one"]
        );
        assert_eq!(whole("... !!"), Vec::<String>::new());
        assert_eq!(whole("   "), Vec::<String>::new());
    }

    #[test]
    fn first_piece_may_end_at_a_comma_once_long_enough() {
        // Comma at 55 characters: the first piece ends there.
        let text = "Thank you for calling the City Clinic appointment line, how can I help you today? Sure, one moment.";
        assert_eq!(
            whole(text),
            vec![
                "Thank you for calling the City Clinic appointment line,",
                "how can I help you today?",
                // Not the first piece any more: a short comma clause is not cut.
                "Sure, one moment."
            ]
        );
        // A comma after 4 characters is too early.
        assert_eq!(whole("Sure, I can help."), vec!["Sure, I can help."]);
        // Thousands separators and times are not clause marks.
        assert_eq!(
            whole("The deposit for the procedure is 1,000 rupees at 10:30 sharp today."),
            vec!["The deposit for the procedure is 1,000 rupees at 10:30 sharp today."]
        );
    }

    #[test]
    fn long_sentences_are_cut_at_clause_marks_then_at_spaces() {
        let config = ChunkerConfig {
            first_chunk_min_chars: 10,
            soft_max_chars: 30,
            hard_max_chars: 50,
        };
        let mut chunker = SentenceChunker::new(config);
        assert_eq!(chunker.push("Hi. "), Vec::<String>::new());
        assert_eq!(chunker.push("Then"), vec!["Hi."]);
        // Second piece: a comma at 12 characters is not enough, at 35 it is.
        let pieces = chunker.push(" we go on, and on and on and on and on, until");
        assert_eq!(pieces, vec!["Then we go on, and on and on and on and on,"]);
        // No marks at all: cut at the last space before 50 characters.
        let pieces = chunker.push(" the words run out of any punctuation whatsoever ok");
        assert_eq!(pieces.len(), 1);
        assert!(pieces[0].chars().count() < 50, "{pieces:?}");
        assert!(pieces[0].starts_with("until the words"), "{pieces:?}");
        assert!(!pieces[0].ends_with(' '));
        let rest = chunker.finish().expect("rest");
        assert_eq!(
            format!("{} {rest}", pieces[0]),
            "until the words run out of any punctuation whatsoever ok"
        );

        // A single word longer than the hard limit is cut mid-word.
        let mut chunker = SentenceChunker::new(config);
        let pieces = chunker.push(&"x".repeat(120));
        assert_eq!(pieces, vec!["x".repeat(50), "x".repeat(50)]);
        assert_eq!(chunker.finish(), Some("x".repeat(20)));
    }

    #[test]
    fn finish_starts_a_new_reply_and_reset_drops_text() {
        let mut chunker = SentenceChunker::default();
        let long_clause = "This is the first clause of a rather long reply, and more.";
        assert_eq!(chunker.push(long_clause).len(), 1, "first-piece rule");
        assert_eq!(chunker.finish().as_deref(), Some("and more."));
        // The first-piece rule applies again after finish.
        assert_eq!(chunker.push(long_clause).len(), 1);
        chunker.reset();
        assert_eq!(chunker.pending(), "");
        assert_eq!(chunker.push(long_clause).len(), 1, "and after reset");
    }

    #[test]
    fn result_does_not_depend_on_delta_boundaries() {
        for text in [
            "Hello world. How are you? Fine!",
            "Dr. Sharma at 10.30... Then e.g. lunch. OK",
            "Well... I think so. Mr. A. Kumar said \"yes.\" Right",
            "Thank you for calling the City Clinic appointment line, how can I help you today?",
            "We open at 9 a.m. tomorrow. Closing is at 5 p.m. See you!",
            "Options:\n1. Morning\n2. Evening",
        ] {
            assert_split_independent(text);
        }
    }

    #[test]
    fn no_words_are_lost() {
        let text = "Okay. Your appointment with Dr. Iyer is at 4.15 p.m. on the 3rd, right after lunch; please come early, carry your ID card, the old prescription and the reports from last time! Anything else? नमस्ते।";
        let pieces = char_by_char(text);
        assert!(pieces.len() >= 4, "{pieces:?}");
        assert_eq!(pieces.join(" "), text);
    }
}
