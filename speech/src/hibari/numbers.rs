//! English number words: cardinal, ordinal, year and decimal readings, the subset of
//! num2words that misaki's number reading uses (an independent implementation in hibari,
//! ported here). Word lists only; the caller splits on non-letters.

const ONES: [&str; 20] = [
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
const TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];
const SCALES: [&str; 12] = [
    "",
    "thousand",
    "million",
    "billion",
    "trillion",
    "quadrillion",
    "quintillion",
    "sextillion",
    "septillion",
    "octillion",
    "nonillion",
    "decillion",
];

/// Largest number [`cardinal`] reads (below one thousand decillion).
pub(crate) const MAX_CARDINAL: u128 = 999_999_999_999_999_999_999_999_999_999_999_999;

fn below_1000(mut n: u128, words: &mut Vec<String>) {
    let start = words.len();
    if n >= 100 {
        words.push(ONES[(n / 100) as usize].to_string());
        words.push("hundred".to_string());
        n %= 100;
        if n > 0 {
            words.push("and".to_string());
        }
    }
    if n >= 20 {
        let tens = TENS[(n / 10) as usize];
        if !n.is_multiple_of(10) {
            words.push(format!("{tens}-{}", ONES[(n % 10) as usize]));
        } else {
            words.push(tens.to_string());
        }
    } else if n > 0 || words.len() == start {
        words.push(ONES[n as usize].to_string());
    }
}

/// num2words(n): "one thousand, two hundred and thirty-four". Numbers above
/// [`MAX_CARDINAL`] are read digit by digit.
pub(crate) fn cardinal(n: u128) -> String {
    if n > MAX_CARDINAL {
        return n
            .to_string()
            .bytes()
            .map(|d| ONES[usize::from(d - b'0')])
            .collect::<Vec<_>>()
            .join(" ");
    }
    if n < 1000 {
        let mut words = Vec::new();
        below_1000(n, &mut words);
        return words.join(" ");
    }
    let mut groups = Vec::new();
    let mut rest = n;
    let mut scale = 0;
    while rest > 0 {
        let group = rest % 1000;
        rest /= 1000;
        if group > 0 {
            let mut words = Vec::new();
            below_1000(group, &mut words);
            let mut text = words.join(" ");
            if scale > 0 {
                text.push(' ');
                text.push_str(SCALES[scale]);
            }
            groups.push(text);
        }
        scale += 1;
    }
    groups.reverse();
    let last = groups.last().cloned().unwrap_or_default();
    let after_and = last.rsplit(" and ").next().unwrap_or("");
    if groups.len() > 1 && !after_and.contains(' ') && !last.contains("hundred") {
        // "one thousand and one"
        let head = groups[..groups.len() - 1].join(", ");
        return format!("{head} and {last}");
    }
    groups.join(", ")
}

fn ordinal_word(word: &str) -> String {
    match word {
        "one" => "first".to_string(),
        "two" => "second".to_string(),
        "three" => "third".to_string(),
        "five" => "fifth".to_string(),
        "eight" => "eighth".to_string(),
        "nine" => "ninth".to_string(),
        "twelve" => "twelfth".to_string(),
        _ => match word.strip_suffix('y') {
            Some(stem) => format!("{stem}ieth"),
            None => format!("{word}th"),
        },
    }
}

/// num2words(n, to="ordinal"): "twenty-third", "one hundred and first", "thousandth".
pub(crate) fn ordinal(n: u128) -> String {
    let text = cardinal(n);
    let (head, last) = match text.rsplit_once(' ') {
        Some((head, last)) => (format!("{head} "), last.to_string()),
        None => (String::new(), text.clone()),
    };
    let last = match last.rsplit_once('-') {
        Some((tens, unit)) => format!("{tens}-{}", ordinal_word(unit)),
        None => ordinal_word(&last),
    };
    format!("{head}{last}")
}

/// num2words(n, to="year"): "nineteen oh-five", "two thousand and five", "twenty ten".
pub(crate) fn year(n: u128) -> String {
    let (high, low) = (n / 100, n % 100);
    if high == 0 || (high % 10 == 0 && low < 10) || high >= 100 {
        return cardinal(n);
    }
    let low_text = if low == 0 {
        "hundred".to_string()
    } else if low < 10 {
        format!("oh-{}", cardinal(low))
    } else {
        cardinal(low)
    };
    format!("{} {low_text}", cardinal(high))
}

/// num2words(float(s)): "3.14" → "three point one four"; trailing zeros dropped as float()
/// does. `s` holds ASCII digits and at most one dot.
pub(crate) fn decimal(s: &str) -> String {
    let (integer, fraction) = s.split_once('.').unwrap_or((s, ""));
    let fraction = fraction.trim_end_matches('0');
    let mut words = cardinal(parse_digits(integer).unwrap_or(0));
    if !fraction.is_empty() {
        words.push_str(" point");
        for d in fraction.bytes().filter(u8::is_ascii_digit) {
            words.push(' ');
            words.push_str(ONES[usize::from(d - b'0')]);
        }
    }
    words
}

/// The value of a run of ASCII digits; `None` when it is empty, has another character or does
/// not fit in 128 bits.
pub(crate) fn parse_digits(s: &str) -> Option<u128> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cardinals_match_num2words() {
        assert_eq!(cardinal(0), "zero");
        assert_eq!(cardinal(21), "twenty-one");
        assert_eq!(cardinal(105), "one hundred and five");
        assert_eq!(cardinal(1001), "one thousand and one");
        assert_eq!(cardinal(1250), "one thousand, two hundred and fifty");
        assert_eq!(cardinal(2_000_010), "two million and ten");
    }

    #[test]
    fn ordinals_years_and_decimals() {
        assert_eq!(ordinal(23), "twenty-third");
        assert_eq!(ordinal(101), "one hundred and first");
        assert_eq!(ordinal(12), "twelfth");
        assert_eq!(ordinal(40), "fortieth");
        assert_eq!(year(1905), "nineteen oh-five");
        assert_eq!(year(2005), "two thousand and five");
        assert_eq!(year(2010), "twenty ten");
        assert_eq!(year(1900), "nineteen hundred");
        assert_eq!(decimal("3.140"), "three point one four");
        assert_eq!(decimal("9.99"), "nine point nine nine");
    }

    #[test]
    fn huge_numbers_are_read_digit_by_digit() {
        let huge = MAX_CARDINAL + 1;
        assert!(cardinal(huge).starts_with("one zero zero"));
    }
}
