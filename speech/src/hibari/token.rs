//! The token record shared by the tokenizer, tagger, lexicon and G2P driver (misaki's
//! `MToken`, flattened, as in hibari's `token.py`).

/// A word or punctuation token and what the G2P has decided about it so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Tok {
    pub text: String,
    /// Penn Treebank part-of-speech tag.
    pub tag: String,
    /// " " when whitespace followed the token in the text, else "".
    pub whitespace: String,
    pub phonemes: Option<String>,
    pub is_head: bool,
    /// Text to read instead of `text` ("2" between letters reads "to").
    pub alias: Option<String>,
    pub stress: Option<f64>,
    pub currency: Option<String>,
    pub num_flags: String,
    pub prespace: bool,
    pub rating: Option<i32>,
}

impl Tok {
    /// A fresh head token.
    pub(crate) fn new(text: &str, tag: &str, whitespace: &str) -> Self {
        Self {
            text: text.to_string(),
            tag: tag.to_string(),
            whitespace: whitespace.to_string(),
            is_head: true,
            ..Self::default()
        }
    }
}

fn case_weight(text: &str) -> usize {
    text.chars()
        .map(|c| {
            let lower_equal = c.to_lowercase().eq(std::iter::once(c));
            if lower_equal { 1 } else { 2 }
        })
        .sum()
}

/// Merge adjacent tokens into one (misaki's `merge_tokens`). With `unk` set, the phonemes
/// are joined too, unknown ones replaced by `unk`.
pub(crate) fn merge_tokens(tokens: &[Tok], unk: Option<&str>) -> Tok {
    let Some(last) = tokens.last() else {
        return Tok::default();
    };
    let mut stresses: Vec<f64> = Vec::new();
    for s in tokens.iter().filter_map(|t| t.stress) {
        if !stresses.contains(&s) {
            stresses.push(s);
        }
    }
    let currency = tokens.iter().filter_map(|t| t.currency.clone()).max();
    let rating = if tokens.iter().any(|t| t.rating.is_none()) {
        None
    } else {
        tokens.iter().filter_map(|t| t.rating).min()
    };
    let phonemes = unk.map(|unk| {
        let mut phonemes = String::new();
        for tk in tokens {
            let has_phonemes = tk.phonemes.as_deref().is_some_and(|p| !p.is_empty());
            if tk.prespace
                && phonemes
                    .chars()
                    .next_back()
                    .is_some_and(|c| !c.is_whitespace())
                && has_phonemes
            {
                phonemes.push(' ');
            }
            phonemes.push_str(tk.phonemes.as_deref().unwrap_or(unk));
        }
        phonemes
    });
    let mut text = String::new();
    for tk in &tokens[..tokens.len() - 1] {
        text.push_str(&tk.text);
        text.push_str(&tk.whitespace);
    }
    text.push_str(&last.text);
    // The tag of the token with the most weight (upper case counts twice); first wins ties.
    let mut tag_source = &tokens[0];
    for tk in tokens {
        if case_weight(&tk.text) > case_weight(&tag_source.text) {
            tag_source = tk;
        }
    }
    let mut flags: Vec<char> = tokens.iter().flat_map(|t| t.num_flags.chars()).collect();
    flags.sort_unstable();
    flags.dedup();
    Tok {
        text,
        tag: tag_source.tag.clone(),
        whitespace: last.whitespace.clone(),
        phonemes,
        is_head: tokens[0].is_head,
        alias: None,
        stress: if stresses.len() == 1 {
            Some(stresses[0])
        } else {
            None
        },
        currency,
        num_flags: flags.into_iter().collect(),
        prespace: tokens[0].prespace,
        rating,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_joins_text_and_picks_the_heaviest_tag() {
        let mut a = Tok::new("New", "NNP", "");
        a.rating = Some(4);
        a.phonemes = Some("nˈu".into());
        let mut b = Tok::new("-", "HYPH", "");
        b.rating = Some(3);
        b.phonemes = Some(String::new());
        let mut c = Tok::new("york", "NN", " ");
        c.rating = Some(4);
        c.phonemes = Some("jˈɔɹk".into());
        c.prespace = true;
        let merged = merge_tokens(&[a, b, c], Some(""));
        assert_eq!(merged.text, "New-york");
        // "New" and "york" weigh the same (4); the first wins.
        assert_eq!(merged.tag, "NNP");
        assert_eq!(merged.whitespace, " ");
        assert_eq!(merged.rating, Some(3));
        assert_eq!(merged.phonemes.as_deref(), Some("nˈu jˈɔɹk"));
    }
}
