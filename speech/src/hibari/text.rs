//! Python `str` predicates and slicing by characters, as the G2P rules it was ported from use
//! them (`isalpha`, `islower`, `capitalize`, `word[1:]`, ...).

/// `str.isalpha()`: non-empty and every character a letter.
pub(crate) fn is_alpha(s: &str) -> bool {
    !s.is_empty() && s.chars().all(char::is_alphabetic)
}

/// `str.isdigit()` for one character: decimal digits and superscript-style digits, not fractions.
pub(crate) fn char_is_digit(c: char) -> bool {
    c.is_ascii_digit()
        || (c.is_numeric()
            && !matches!(c, '¼' | '½' | '¾' | '\u{2150}'..='\u{218F}')
            && !c.is_alphabetic())
}

/// `str.isdigit()`: non-empty and every character a digit.
pub(crate) fn is_digit(s: &str) -> bool {
    !s.is_empty() && s.chars().all(char_is_digit)
}

fn is_cased(c: char) -> bool {
    c.is_lowercase() || c.is_uppercase()
}

/// `str.islower()`: at least one cased character and none upper case.
pub(crate) fn is_lower(s: &str) -> bool {
    s.chars().any(is_cased) && !s.chars().any(char::is_uppercase)
}

/// `str.isupper()`: at least one cased character and none lower case.
pub(crate) fn is_upper(s: &str) -> bool {
    s.chars().any(is_cased) && !s.chars().any(char::is_lowercase)
}

/// `str.capitalize()`: first character upper case, the rest lower case.
pub(crate) fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first
            .to_uppercase()
            .chain(chars.as_str().to_lowercase().chars())
            .collect(),
        None => String::new(),
    }
}

/// Number of characters (Python's `len`).
pub(crate) fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// `s[n:]`: without the first `n` characters.
pub(crate) fn skip_chars(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((at, _)) => &s[at..],
        None => "",
    }
}

/// `s[:-n]`: without the last `n` characters.
pub(crate) fn drop_last_chars(s: &str, n: usize) -> &str {
    if n == 0 {
        return s;
    }
    match s.char_indices().rev().nth(n - 1) {
        Some((at, _)) => &s[..at],
        None => "",
    }
}

/// `s[-n:]`: the last `n` characters (all of `s` when shorter).
pub(crate) fn last_chars(s: &str, n: usize) -> &str {
    if n == 0 {
        return "";
    }
    match s.char_indices().rev().nth(n - 1) {
        Some((at, _)) => &s[at..],
        None => s,
    }
}

/// `s[:n]`: the first `n` characters.
pub(crate) fn first_chars(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

/// The last character, `s[-1]`.
pub(crate) fn last_char(s: &str) -> Option<char> {
    s.chars().next_back()
}

/// The character before the last one, `s[-2]`.
pub(crate) fn second_last_char(s: &str) -> Option<char> {
    s.chars().rev().nth(1)
}

/// Escape every ASCII punctuation character for a regular expression (inside or outside a
/// character class), like Python's `re.escape`.
pub(crate) fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if c.is_ascii_punctuation() {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Replace every match of `re` in `text` with what `replace` returns for its captures, scanning
/// the original text like Python's `re.sub`. A regex that gives up (backtracking limit) leaves
/// the rest of the text as it is.
pub(crate) fn replace_all(
    re: &fancy_regex::Regex,
    text: &str,
    mut replace: impl FnMut(&fancy_regex::Captures<'_, str>) -> String,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for caps in re.captures_iter(text) {
        let Ok(caps) = caps else { break };
        let Some(whole) = caps.get(0) else { continue };
        out.push_str(&text[last..whole.start()]);
        out.push_str(&replace(&caps));
        last = whole.end();
    }
    out.push_str(&text[last..]);
    out
}

/// Every match of `re` in `text`, as strings (Python's `re.findall` without groups).
pub(crate) fn find_all<'t>(re: &fancy_regex::Regex, text: &'t str) -> Vec<&'t str> {
    re.find_iter(text)
        .map_while(Result::ok)
        .map(|m| m.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicates_follow_python() {
        assert!(is_alpha("héllo") && !is_alpha("a1") && !is_alpha(""));
        assert!(is_lower("abc1") && !is_lower("123") && !is_lower("aB"));
        assert!(is_upper("AB1") && !is_upper("1") && !is_upper("Ab"));
        assert!(is_digit("2024") && is_digit("²") && !is_digit("½") && !is_digit(""));
        assert_eq!(capitalize("hELLO"), "Hello");
    }

    #[test]
    fn slicing_counts_characters() {
        assert_eq!(skip_chars("ˈæb", 1), "æb");
        assert_eq!(drop_last_chars("ɾᵻd", 1), "ɾᵻ");
        assert_eq!(last_chars("ab", 3), "ab");
        assert_eq!(last_chars("abcd", 3), "bcd");
        assert_eq!(first_chars("ˈæbc", 2), "ˈæ");
        assert_eq!(second_last_char("ˈæt"), Some('æ'));
    }

    #[test]
    fn replace_all_sees_the_original_text() {
        let re = fancy_regex::Regex::new(r"(?<=a)b").expect("regex");
        assert_eq!(replace_all(&re, "abab cb", |_| "X".to_string()), "aXaX cb");
    }
}
