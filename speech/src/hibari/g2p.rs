//! Text → misaki-style English phonemes without spaCy or espeak-ng (hibari's `g2p/__init__.py`,
//! which ports misaki 0.9.4's `en.py`): normalise → tokenize (spaCy rules) → tag (perceptron)
//! → lexicon with part-of-speech and context rules → out-of-vocabulary guesses → stress
//! resolution. Phoneme characters are those of the acoustic model's vocabulary.

use fancy_regex::Regex;

use super::HibariError;
use super::lexicon::{
    Context, Lexicon, PRIMARY_STRESS, Reading, apply_stress, is_consonant, is_lexicon_currency,
    is_vowel, stress_weight,
};
use super::normalize::Normalizer;
use super::tagger::Tagger;
use super::text::{char_is_digit, char_len, find_all};
use super::token::{Tok, merge_tokens};
use super::tokenize::Tokenizer;

const SUBTOKEN: &str = r"^['‘’]+|[A-ZÀ-ÖØ-Þ](?=[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ])|(?:^-)?(?:\d?[,.]?\d)+|[-_]+|['‘’]{2,}|[^\W\d_]*?(?:['‘’][^\W\d_])*?[a-zß-öø-ÿ](?=[A-ZÀ-ÖØ-Þ])|[^\W\d_]+(?:['‘’][^\W\d_])*|[^\w\-'‘’]|['‘’]+$";
const LINK: &str = r"\[([^\]]+)\]\(([^\)]*)\)";
const FALLBACK_PIECE: &str = r"[^\W\d_]+(?:['’][^\W\d_]+)*|\d+(?:[,.]\d+)*|[^\w\s]+";
const SUBTOKEN_JUNKS: &str = "',-._‘’/";
const PUNCTS: &str = ";:,.!?—…\"“”";
const NON_QUOTE_PUNCTS: &str = ";:,.!?—…";
const PUNCT_TAGS: [&str; 11] = [
    ".", ",", "-LRB-", "-RRB-", "``", "\"\"", "''", ":", "$", "#", "NFP",
];

fn punct_tag_phonemes(tag: &str) -> Option<&'static str> {
    match tag {
        "-LRB-" => Some("("),
        "-RRB-" => Some(")"),
        "``" => Some("\u{201c}"),
        "\"\"" | "''" => Some("\u{201d}"),
        _ => None,
    }
}

fn symbol_phonemes(c: char) -> &'static str {
    match c {
        '/' => "slˈæʃ",
        '=' => "ˈikwᵊlz",
        '+' => "plˈʌs",
        '&' => "ænd",
        '@' => "æt",
        '%' => "pəɹsˈɛnt",
        '#' => "hˈæʃ",
        '*' => "ˈæstəɹˌɪsk",
        '~' => "tˈɪldə",
        '^' => "kˈɛɹət",
        '<' => "lˈɛs ðən",
        '>' => "ɡɹˈATəɹ ðən",
        '—' => "—",
        _ => "",
    }
}

fn all_junk(text: &str) -> bool {
    text.chars().all(|c| SUBTOKEN_JUNKS.contains(c))
}

fn is_non_quote_punct(text: &str) -> bool {
    let mut chars = text.chars();
    matches!((chars.next(), chars.next()), (Some(c), None) if NON_QUOTE_PUNCTS.contains(c))
}

/// Guesses phonemes for a word the lexicon does not know.
pub(crate) type OovGuesser = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// A retokenized word: one token, or several written together ("New-York", "3rd").
enum Word {
    One(Tok),
    Group(Vec<Tok>),
}

/// The grapheme-to-phoneme converter.
pub(crate) struct G2p {
    lexicon: Lexicon,
    tokenizer: Tokenizer,
    tagger: Tagger,
    normalizer: Normalizer,
    oov: Option<OovGuesser>,
    subtoken: Regex,
    link: Regex,
    fallback_piece: Regex,
}

impl G2p {
    /// Assemble the converter; `oov` reads unknown words (`None` skips them).
    pub(crate) fn new(
        lexicon: Lexicon,
        tokenizer: Tokenizer,
        tagger: Tagger,
        normalizer: Normalizer,
        oov: Option<OovGuesser>,
    ) -> Result<Self, HibariError> {
        let compile = |what: &str, pattern: &str| {
            Regex::new(pattern).map_err(|e| HibariError::Pattern {
                what: what.to_string(),
                detail: e.to_string(),
            })
        };
        Ok(Self {
            lexicon,
            tokenizer,
            tagger,
            normalizer,
            oov,
            subtoken: compile("sub-tokens", SUBTOKEN)?,
            link: compile("inline pronunciations", LINK)?,
            fallback_piece: compile("unknown-word pieces", FALLBACK_PIECE)?,
        })
    }

    /// Phonemes for one sentence (or line) of text.
    pub(crate) fn phonemize(&self, text: &str) -> String {
        let text = self.normalizer.normalize(text);
        let tokens = self.phonemize_tokens(self.tokenize(&text));
        let mut out = String::new();
        for tk in tokens {
            out.push_str(tk.phonemes.as_deref().unwrap_or(""));
            if !tk.whitespace.is_empty() {
                out.push(' ');
            }
        }
        out.trim().to_string()
    }

    /// Tokens with tags; `[text](/phonemes/)` sets a token's phonemes directly.
    fn tokenize(&self, text: &str) -> Vec<Tok> {
        let mut tokens = Vec::new();
        let mut position = 0;
        for caps in self.link.captures_iter(text).map_while(Result::ok) {
            let (Some(whole), Some(shown), Some(target)) = (caps.get(0), caps.get(1), caps.get(2))
            else {
                continue;
            };
            tokens.extend(self.tagged_tokens(&text[position..whole.start()]));
            let target = target.as_str();
            let phonemes = (target.len() > 1 && target.starts_with('/') && target.ends_with('/'))
                .then(|| target[1..].trim_end_matches('/').to_string());
            let followed_by_space = text[whole.end()..]
                .chars()
                .next()
                .is_some_and(char::is_whitespace);
            let mut tk = Tok::new(
                shown.as_str(),
                "NN",
                if followed_by_space { " " } else { "" },
            );
            tk.phonemes = phonemes;
            tk.rating = Some(5);
            tokens.push(tk);
            position = whole.end();
        }
        tokens.extend(self.tagged_tokens(&text[position..]));
        tokens
    }

    fn tagged_tokens(&self, text: &str) -> Vec<Tok> {
        let pairs = self.tokenizer.tokenize(text);
        if pairs.is_empty() {
            return Vec::new();
        }
        let words: Vec<String> = pairs.iter().map(|(t, _)| t.clone()).collect();
        let tags = self.tagger.tag(&words);
        pairs
            .into_iter()
            .zip(tags)
            .map(|((text, whitespace), tag)| Tok::new(&text, &tag, &whitespace))
            .collect()
    }

    /// Split tokens into sub-tokens and group those written together (misaki's retokenize).
    fn retokenize(&self, tokens: &[Tok]) -> Vec<Word> {
        let mut words: Vec<Word> = Vec::new();
        let mut currency: Option<String> = None;
        for (i, token) in tokens.iter().enumerate() {
            let mut pieces: Vec<Tok> = if token.alias.is_none() && token.phonemes.is_none() {
                find_all(&self.subtoken, &token.text)
                    .into_iter()
                    .map(|text| Tok {
                        text: text.to_string(),
                        whitespace: String::new(),
                        is_head: true,
                        prespace: false,
                        ..token.clone()
                    })
                    .collect()
            } else {
                vec![token.clone()]
            };
            let Some(last) = pieces.last_mut() else {
                continue;
            };
            last.whitespace = token.whitespace.clone();
            let count = pieces.len();
            let neighbours: Vec<(Option<char>, Option<char>)> = (0..count)
                .map(|j| {
                    let before = j
                        .checked_sub(1)
                        .and_then(|p| pieces[p].text.chars().next_back());
                    let after = pieces.get(j + 1).and_then(|n| n.text.chars().next());
                    (before, after)
                })
                .collect();
            for (j, mut tk) in pieces.into_iter().enumerate() {
                if tk.alias.is_some() || tk.phonemes.is_some() {
                } else if tk.tag == "$" && is_lexicon_currency(&tk.text) {
                    currency = Some(tk.text.clone());
                    tk.phonemes = Some(String::new());
                    tk.rating = Some(4);
                } else if tk.tag == ":" && matches!(tk.text.as_str(), "-" | "–") {
                    tk.phonemes = Some("—".to_string());
                    tk.rating = Some(3);
                } else if PUNCT_TAGS.contains(&tk.tag.as_str())
                    && !tk.text.chars().all(|c| {
                        let mut lower = c.to_lowercase();
                        matches!((lower.next(), lower.next()), (Some(l), None) if l.is_ascii_lowercase())
                    })
                {
                    let phonemes = match punct_tag_phonemes(&tk.tag) {
                        Some(p) => p.to_string(),
                        None => tk.text.chars().filter(|&c| PUNCTS.contains(c)).collect(),
                    };
                    tk.phonemes = Some(phonemes);
                    tk.rating = Some(4);
                } else if let Some(symbol) = &currency {
                    if tk.tag != "CD" {
                        currency = None;
                    } else if j + 1 == count
                        && (i + 1 == tokens.len() || tokens[i + 1].tag != "CD")
                    {
                        tk.currency = Some(symbol.clone());
                    }
                } else if j > 0 && j + 1 < count && tk.text == "2" {
                    let (before, after) = neighbours[j];
                    if let (Some(b), Some(a)) = (before, after)
                        && b.is_alphabetic()
                        && a.is_alphabetic()
                    {
                        tk.alias = Some("to".to_string());
                    }
                }
                if tk.alias.is_some() || tk.phonemes.is_some() {
                    words.push(Word::One(tk));
                } else if let Some(Word::Group(group)) = words.last_mut()
                    && group.last().is_some_and(|t| t.whitespace.is_empty())
                {
                    tk.is_head = false;
                    group.push(tk);
                } else if tk.whitespace.is_empty() {
                    words.push(Word::Group(vec![tk]));
                } else {
                    words.push(Word::One(tk));
                }
            }
        }
        words
            .into_iter()
            .map(|w| match w {
                Word::Group(mut group) if group.len() == 1 => {
                    Word::One(group.pop().unwrap_or_default())
                }
                other => other,
            })
            .collect()
    }

    fn token_context(ctx: &Context, phonemes: Option<&str>, token: &Tok) -> Context {
        let mut vowel = ctx.future_vowel;
        if let Some(ps) = phonemes.filter(|p| !p.is_empty()) {
            for c in ps.chars() {
                let punct = NON_QUOTE_PUNCTS.contains(c);
                if is_vowel(c) || is_consonant(c) || punct {
                    vowel = if punct { None } else { Some(is_vowel(c)) };
                    break;
                }
            }
        }
        let future_to = matches!(token.text.as_str(), "to" | "To")
            || (token.text == "TO" && matches!(token.tag.as_str(), "TO" | "IN"));
        Context {
            future_vowel: vowel,
            future_to,
        }
    }

    /// Spacing and stress inside a group of tokens read separately.
    fn resolve_tokens(tokens: &mut [Tok]) {
        let mut text = String::new();
        for tk in &tokens[..tokens.len().saturating_sub(1)] {
            text.push_str(&tk.text);
            text.push_str(&tk.whitespace);
        }
        if let Some(last) = tokens.last() {
            text.push_str(&last.text);
        }
        let mut kinds = [false; 3];
        for c in text.chars().filter(|&c| !SUBTOKEN_JUNKS.contains(c)) {
            let kind = if c.is_alphabetic() {
                0
            } else if c.is_ascii_digit() {
                1
            } else {
                2
            };
            kinds[kind] = true;
        }
        let prespace =
            text.contains(' ') || text.contains('/') || kinds.iter().filter(|&&k| k).count() > 1;
        let count = tokens.len();
        for (i, tk) in tokens.iter_mut().enumerate() {
            if tk.phonemes.is_none() {
                if i + 1 == count && is_non_quote_punct(&tk.text) {
                    tk.phonemes = Some(tk.text.clone());
                    tk.rating = Some(3);
                } else if all_junk(&tk.text) {
                    tk.phonemes = Some(String::new());
                    tk.rating = Some(3);
                }
            } else if i > 0 {
                tk.prespace = prespace;
            }
        }
        if prespace {
            return;
        }
        let mut indices: Vec<(bool, usize, usize)> = tokens
            .iter()
            .enumerate()
            .filter_map(|(i, tk)| {
                let ps = tk.phonemes.as_deref().filter(|p| !p.is_empty())?;
                Some((ps.contains(PRIMARY_STRESS), stress_weight(ps), i))
            })
            .collect();
        if indices.len() == 2 && char_len(&tokens[indices[0].2].text) == 1 {
            let i = indices[1].2;
            let ps = tokens[i].phonemes.clone().unwrap_or_default();
            tokens[i].phonemes = Some(apply_stress(&ps, Some(-0.5)));
            return;
        }
        let stressed = indices.iter().filter(|(b, _, _)| *b).count();
        if indices.len() < 2 || stressed <= indices.len().div_ceil(2) {
            return;
        }
        indices.sort();
        for &(_, _, i) in &indices[..indices.len() / 2] {
            let ps = tokens[i].phonemes.clone().unwrap_or_default();
            tokens[i].phonemes = Some(apply_stress(&ps, Some(-0.5)));
        }
    }

    /// Unknown word: letters go to the OOV net, digit runs to the number reader, symbols to a
    /// small table.
    fn fallback(&self, tk: &Tok) -> (Option<String>, Option<i32>) {
        let Some(oov) = &self.oov else {
            return (None, None);
        };
        let mut out = Vec::new();
        for piece in find_all(&self.fallback_piece, &tk.text) {
            let Some(first) = piece.chars().next() else {
                continue;
            };
            let ps = if char_is_digit(first) {
                self.lexicon.get_number(piece, None, false).map(|r| r.0)
            } else if first.is_alphabetic() {
                oov(piece)
            } else {
                Some(piece.chars().map(symbol_phonemes).collect())
            };
            if let Some(ps) = ps.filter(|p| !p.is_empty()) {
                out.push(ps);
            }
        }
        if out.is_empty() {
            (Some(String::new()), Some(3))
        } else {
            (Some(out.join(" ")), Some(2))
        }
    }

    fn set(tk: &mut Tok, reading: Option<Reading>) {
        match reading {
            Some((ps, rating)) => {
                tk.phonemes = Some(ps);
                tk.rating = Some(rating);
            }
            None => {
                tk.phonemes = None;
                tk.rating = None;
            }
        }
    }

    /// Fill in the tokens' phonemes, reading right to left (misaki's `G2P.__call__`).
    fn phonemize_tokens(&self, tokens: Vec<Tok>) -> Vec<Tok> {
        let mut words = self.retokenize(&tokens);
        let mut ctx = Context::default();
        for word in words.iter_mut().rev() {
            match word {
                Word::One(tk) => {
                    if tk.phonemes.is_none() {
                        let reading = self.lexicon.read(tk, &ctx);
                        Self::set(tk, reading);
                    }
                    if tk.phonemes.is_none() {
                        let (ps, rating) = self.fallback(tk);
                        tk.phonemes = ps;
                        tk.rating = rating;
                    }
                    ctx = Self::token_context(&ctx, tk.phonemes.as_deref(), tk);
                }
                Word::Group(group) => {
                    let (mut left, mut right) = (0, group.len());
                    let mut should_fallback = false;
                    while left < right {
                        let preset = group[left..right]
                            .iter()
                            .any(|t| t.alias.is_some() || t.phonemes.is_some());
                        let merged = (!preset).then(|| merge_tokens(&group[left..right], None));
                        let reading = merged.as_ref().and_then(|m| self.lexicon.read(m, &ctx));
                        if let (Some((ps, rating)), Some(merged)) = (reading, merged.as_ref()) {
                            group[left].phonemes = Some(ps.clone());
                            group[left].rating = Some(rating);
                            for x in &mut group[left + 1..right] {
                                x.phonemes = Some(String::new());
                                x.rating = Some(rating);
                            }
                            ctx = Self::token_context(&ctx, Some(&ps), merged);
                            right = left;
                            left = 0;
                        } else if left + 1 < right {
                            left += 1;
                        } else {
                            right -= 1;
                            let tk = &mut group[right];
                            if tk.phonemes.is_none() {
                                if all_junk(&tk.text) {
                                    tk.phonemes = Some(String::new());
                                    tk.rating = Some(3);
                                } else {
                                    should_fallback = true;
                                    break;
                                }
                            }
                            left = 0;
                        }
                    }
                    if should_fallback {
                        let merged = merge_tokens(group, None);
                        let (ps, rating) = self.fallback(&merged);
                        group[0].phonemes = ps;
                        group[0].rating = rating;
                        for x in &mut group[1..] {
                            x.phonemes = Some(String::new());
                            x.rating = rating;
                        }
                    } else {
                        Self::resolve_tokens(group);
                    }
                }
            }
        }
        words
            .into_iter()
            .map(|word| {
                let mut tk = match word {
                    Word::One(tk) => tk,
                    Word::Group(group) => merge_tokens(&group, Some("")),
                };
                if let Some(ps) = &tk.phonemes {
                    tk.phonemes = Some(ps.replace('ɾ', "T").replace('ʔ', "t"));
                }
                tk
            })
            .collect()
    }
}

/// Sentence splitting before synthesis (hibari's `Hibari.split_sentences`): paragraph breaks
/// and end punctuation, except after a title or an initial ("Dr. Smith", "J. K. Rowling") or
/// before a lower-case word.
pub(crate) struct SentenceSplitter {
    end: Regex,
    titles: Vec<String>,
}

impl SentenceSplitter {
    pub(crate) fn new(titles: Vec<String>) -> Result<Self, HibariError> {
        let end =
            Regex::new(r#"(?<=[.!?…])["”’)\]]*\s+(?=\S)"#).map_err(|e| HibariError::Pattern {
                what: "sentence ends".to_string(),
                detail: e.to_string(),
            })?;
        Ok(Self { end, titles })
    }

    fn ends_sentence(&self, para: &str, end: usize, next: char) -> bool {
        if next.is_lowercase() {
            return false;
        }
        let before = &para[..end];
        if !before.ends_with('.') {
            return true;
        }
        let word_start = before.rfind(' ').map_or(0, |i| i + 1);
        let word =
            before[word_start..before.len() - 1].trim_start_matches(['(', '"', '“', '\'', '‘']);
        let is_initial = word.chars().count() == 1 && word.chars().all(char::is_uppercase);
        !(self.titles.iter().any(|t| t == word) || is_initial)
    }

    /// The sentences of `text`, each what the model sees at once.
    pub(crate) fn split(&self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for para in text.trim().lines() {
            let para = para.trim();
            let mut cut = 0;
            for m in self.end.find_iter(para).map_while(Result::ok) {
                let Some(next) = para[m.end()..].chars().next() else {
                    continue;
                };
                if m.start() > cut && self.ends_sentence(para, m.start(), next) {
                    out.push(para[cut..m.start()].to_string());
                    cut = m.end();
                }
            }
            out.push(para[cut..].to_string());
        }
        out.retain(|s| !s.trim().is_empty());
        out
    }
}

/// Longest phoneme string sent to the model at once; longer sentences are split at clause
/// punctuation.
pub(crate) const MAX_PHONEMES: usize = 400;

/// Split a long phoneme string at clause punctuation into chunks of at most [`MAX_PHONEMES`]
/// characters where possible.
pub(crate) fn chunk_phonemes(phonemes: &str) -> Vec<String> {
    if char_len(phonemes) <= MAX_PHONEMES {
        return vec![phonemes.to_string()];
    }
    let mut parts: Vec<&str> = Vec::new();
    let mut start = 0;
    let mut chars = phonemes.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if matches!(c, ',' | ';' | ':' | '—')
            && chars.peek().is_some_and(|(_, n)| n.is_whitespace())
        {
            let end = i + c.len_utf8();
            parts.push(&phonemes[start..end]);
            while let Some((_, n)) = chars.peek() {
                if !n.is_whitespace() {
                    break;
                }
                chars.next();
            }
            start = chars.peek().map_or(phonemes.len(), |(j, _)| *j);
        }
    }
    parts.push(&phonemes[start..]);
    let mut chunks = Vec::new();
    let mut current = String::new();
    for part in parts.into_iter().filter(|p| !p.is_empty()) {
        if !current.is_empty() && char_len(&current) + char_len(part) + 1 > MAX_PHONEMES {
            chunks.push(std::mem::take(&mut current));
            current = part.to_string();
        } else if current.is_empty() {
            current = part.to_string();
        } else {
            current.push(' ');
            current.push_str(part);
        }
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_split_at_ends_but_not_after_titles_or_initials() {
        let splitter = SentenceSplitter::new(vec!["Dr".to_string()]).expect("pattern");
        assert_eq!(
            splitter.split("See Dr. Smith today. J. K. Rowling wrote it! ok? fine.\nNext line"),
            vec![
                "See Dr. Smith today.",
                "J. K. Rowling wrote it! ok? fine.",
                "Next line"
            ]
        );
        assert!(splitter.split("  \n ").is_empty());
    }

    #[test]
    fn long_phoneme_strings_split_at_clauses() {
        let clause = "ə".repeat(150);
        let long = format!("{clause}, {clause}; {clause}.");
        let chunks = chunk_phonemes(&long);
        assert_eq!(chunks.len(), 2);
        assert!(chunks.iter().all(|c| char_len(c) <= MAX_PHONEMES));
        assert_eq!(chunks[0], format!("{clause}, {clause};"));
        assert_eq!(chunk_phonemes("ˈA"), vec!["ˈA"]);
    }
}
