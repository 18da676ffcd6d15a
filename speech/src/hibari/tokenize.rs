//! Word tokenizer with spaCy's English rules (spaCy, MIT; as hibari's `tokenize.py`): special
//! cases (contractions, "Mr.", "10am"), then prefixes and suffixes are peeled off each
//! whitespace-separated chunk, then infixes (hyphens, slashes) split what is left; finally
//! adjacent pieces that spell a special case are joined back ("Sept" + "." → "Sept.").

use std::collections::HashMap;

use fancy_regex::Regex;

use super::HibariError;
use super::text::regex_escape;

const LOWER: &str = "a-zß-öø-ÿ";
const UPPER: &str = "A-ZÀ-ÖØ-Þ";
const QUOTES: &str = "'\"”“`‘´’‚,„»«「」『』（）〔〕【】《》〈〉";
const PUNCT: &str = "…,:;!?¿¡()[]{}<>_#*&。？！，、；：～·";
const ICONS: &str = "™®©°§¶†‡•";
const CURRENCY: &str = r"\$|£|€|¥|฿|US\$|C\$|A\$|₽|₹|₩|₪|₺|₴|₦|₫|₱|₲|₵|₸|₼|₾|₿";
const UNITS: &str = "km|km²|km³|m|m²|m³|dm|dm²|dm³|cm|cm²|cm³|mm|mm²|mm³|ha|µm|nm|yd|in|ft|kg|g|mg|µg|t|lb|oz|m/s|km/h\
|kmh|mph|hPa|Pa|mbar|mb|MB|kb|KB|gb|GB|tb|TB|T|G|M|K|%";
const URL: &str = r"(?i)^(?:(?:https?|ftp)://|www\.)\S+$|^[\w.+-]+@[\w-]+(?:\.[\w-]+)+$|^(?:[\w-]+\.)+(?:com|org|net|edu|gov|io|co|uk|de|fr|info|biz|us|ca|au|tv|me|ly|ai)(?:/\S*)?$";

/// spaCy-style tokenizer: text → (token, followed by whitespace).
pub(crate) struct Tokenizer {
    special: HashMap<String, Vec<String>>,
    prefix: Regex,
    suffix: Regex,
    infix: Regex,
    url: Regex,
}

fn escaped_chars(chars: &str) -> Vec<String> {
    chars
        .chars()
        .map(|c| regex_escape(&c.to_string()))
        .collect()
}

impl Tokenizer {
    /// Build the tokenizer from spaCy's special-case table (`tokenizer_exceptions.json`).
    pub(crate) fn new(special: HashMap<String, Vec<String>>) -> Result<Self, HibariError> {
        let punct = escaped_chars(PUNCT);
        let quotes = escaped_chars(QUOTES);
        let icons = format!("[{}]", regex_escape(ICONS));
        let punct_class = regex_escape(PUNCT);
        let quote_class = regex_escape(QUOTES);
        let letter = r"[^\W\d_]";

        let mut prefixes: Vec<String> = ["§", "%", "=", "—", "–", r"\+(?![0-9])", "…", "……"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        prefixes.extend(punct.iter().cloned());
        prefixes.extend([r"\.\.+".to_string(), "…".to_string()]);
        prefixes.extend(quotes.iter().cloned());
        prefixes.push(CURRENCY.to_string());
        prefixes.push(icons.clone());

        let mut suffixes: Vec<String> = vec!["…".to_string(), "……".to_string()];
        suffixes.extend(punct.iter().cloned());
        suffixes.extend([r"\.\.+".to_string(), "…".to_string()]);
        suffixes.extend(quotes.iter().cloned());
        suffixes.push(icons.clone());
        suffixes.extend(
            ["'s", "'S", "’s", "’S", "—", "–"]
                .iter()
                .map(|s| s.to_string()),
        );
        suffixes.extend([
            r"(?<=[0-9])\+".to_string(),
            r"(?<=°[FfCcKk])\.".to_string(),
            format!("(?<=[0-9])(?:{CURRENCY})"),
            format!("(?<=[0-9])(?:{UNITS})"),
            format!(r"(?<=[0-9{LOWER}%²\-\+{punct_class}{quote_class}])\."),
            format!(r"(?<=[{UPPER}][{UPPER}])\."),
        ]);

        let infixes = [
            r"\.\.+".to_string(),
            "…".to_string(),
            icons,
            r"(?<=[0-9])[+\-\*^](?=[0-9-])".to_string(),
            format!(r"(?<=[{LOWER}{quote_class}])\.(?=[{UPPER}{quote_class}])"),
            format!(r"(?<={letter}),(?={letter})"),
            format!(r"(?<=[^\W_])(?:-|–|—|--|---|——|~)(?={letter})"),
            format!(r"(?<=[^\W_])[:<>=/](?={letter})"),
        ];

        let compile = |what: &str, pattern: String| {
            Regex::new(&pattern).map_err(|e| HibariError::Pattern {
                what: what.to_string(),
                detail: e.to_string(),
            })
        };
        let prefix = prefixes
            .iter()
            .map(|p| format!("^(?:{p})"))
            .collect::<Vec<_>>()
            .join("|");
        let suffix = suffixes
            .iter()
            .map(|s| format!("(?:{s})$"))
            .collect::<Vec<_>>()
            .join("|");
        let infix = infixes
            .iter()
            .map(|i| format!("(?:{i})"))
            .collect::<Vec<_>>()
            .join("|");
        Ok(Self {
            special,
            prefix: compile("tokenizer prefixes", prefix)?,
            suffix: compile("tokenizer suffixes", suffix)?,
            infix: compile("tokenizer infixes", infix)?,
            url: compile("tokenizer URLs", URL.to_string())?,
        })
    }

    /// Tokens of `text` with their trailing whitespace (" " or "").
    pub(crate) fn tokenize(&self, text: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let chunks: Vec<(usize, &str)> = text
            .split_whitespace()
            .map(|chunk| (chunk.as_ptr() as usize - text.as_ptr() as usize, chunk))
            .collect();
        for (start, chunk) in chunks {
            let end = start + chunk.len();
            let whitespace = if end < text.len() { " " } else { "" };
            let mut tokens = self.split(chunk);
            let Some(last) = tokens.pop() else { continue };
            out.extend(tokens.into_iter().map(|t| (t, String::new())));
            out.push((last, whitespace.to_string()));
        }
        out
    }

    fn find_end(re: &Regex, s: &str) -> Option<(usize, usize)> {
        match re.find(s) {
            Ok(Some(m)) => Some((m.start(), m.end())),
            _ => None,
        }
    }

    fn split(&self, chunk: &str) -> Vec<String> {
        if let Some(tokens) = self.special.get(chunk) {
            return tokens.clone();
        }
        let mut s = chunk;
        let mut prefixes: Vec<&str> = Vec::new();
        let mut suffixes: Vec<&str> = Vec::new();
        let mut last_len = usize::MAX;
        while !s.is_empty() && s.len() != last_len && !self.special.contains_key(s) {
            last_len = s.len();
            let pre_len = Self::find_end(&self.prefix, s).map_or(0, |(_, end)| end);
            if pre_len > 0 {
                let minus_pre = &s[pre_len..];
                if !minus_pre.is_empty() && self.special.contains_key(minus_pre) {
                    prefixes.push(&s[..pre_len]);
                    s = minus_pre;
                    break;
                }
            }
            let suf_len = Self::find_end(&self.suffix, &s[pre_len..]).map_or(0, |(a, b)| b - a);
            if suf_len > 0 {
                let minus_suf = &s[..s.len() - suf_len];
                if !minus_suf.is_empty() && self.special.contains_key(minus_suf) {
                    suffixes.push(&s[s.len() - suf_len..]);
                    s = minus_suf;
                    break;
                }
            }
            if pre_len > 0 && suf_len > 0 && pre_len + suf_len <= s.len() {
                prefixes.push(&s[..pre_len]);
                suffixes.push(&s[s.len() - suf_len..]);
                s = &s[pre_len..s.len() - suf_len];
            } else if pre_len > 0 {
                prefixes.push(&s[..pre_len]);
                s = &s[pre_len..];
            } else if suf_len > 0 {
                suffixes.push(&s[s.len() - suf_len..]);
                s = &s[..s.len() - suf_len];
            }
        }
        let mut tokens: Vec<String> = prefixes.iter().map(|p| p.to_string()).collect();
        if !s.is_empty() {
            if let Some(special) = self.special.get(s) {
                tokens.extend(special.iter().cloned());
            } else if self.url.is_match(s).unwrap_or(false) {
                tokens.push(s.to_string());
            } else {
                let mut start = 0;
                for m in self.infix.find_iter(s).map_while(Result::ok) {
                    if m.start() == 0 || m.start() == m.end() {
                        continue;
                    }
                    if m.start() > start {
                        tokens.push(s[start..m.start()].to_string());
                    }
                    tokens.push(m.as_str().to_string());
                    start = m.end();
                }
                if start < s.len() {
                    tokens.push(s[start..].to_string());
                }
            }
        }
        tokens.extend(suffixes.iter().rev().map(|s| s.to_string()));
        if tokens.len() > 1 {
            self.rejoin(tokens)
        } else {
            tokens
        }
    }

    /// spaCy's special-case pass over the split pieces: "Sept" "." → "Sept.", ")" ":" → "):".
    fn rejoin(&self, tokens: Vec<String>) -> Vec<String> {
        let mut out = Vec::with_capacity(tokens.len());
        let mut i = 0;
        'outer: while i < tokens.len() {
            for k in [3, 2] {
                if i + k <= tokens.len() {
                    let joined = tokens[i..i + k].concat();
                    if let Some(special) = self.special.get(&joined) {
                        out.extend(special.iter().cloned());
                        i += k;
                        continue 'outer;
                    }
                }
            }
            out.push(tokens[i].clone());
            i += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokenizer() -> Tokenizer {
        let special: HashMap<String, Vec<String>> = [
            ("don't", vec!["do", "n't"]),
            ("Mr.", vec!["Mr."]),
            ("Sept.", vec!["Sept."]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
        .collect();
        Tokenizer::new(special).expect("tokenizer patterns compile")
    }

    fn texts(tokens: &[(String, String)]) -> Vec<&str> {
        tokens.iter().map(|(t, _)| t.as_str()).collect()
    }

    #[test]
    fn peels_punctuation_and_keeps_whitespace() {
        let t = tokenizer();
        let tokens = t.tokenize("Hello, (world)! I don't know.");
        assert_eq!(
            texts(&tokens),
            [
                "Hello", ",", "(", "world", ")", "!", "I", "do", "n't", "know", "."
            ]
        );
        assert_eq!(tokens[1].1, " ");
        assert_eq!(tokens[0].1, "");
        assert_eq!(tokens.last().map(|t| t.1.as_str()), Some(""));
    }

    #[test]
    fn splits_units_hyphens_and_rejoins_special_cases() {
        let t = tokenizer();
        assert_eq!(
            texts(&t.tokenize("5km well-known")),
            ["5", "km", "well", "-", "known"]
        );
        assert_eq!(texts(&t.tokenize("$9.99")), ["$", "9.99"]);
        assert_eq!(
            texts(&t.tokenize("Sept. www.example.com")),
            ["Sept.", "www.example.com"]
        );
    }
}
