//! Rule-based understanding of the caller's answers: day, time, name, yes/no, reason.

use std::fmt;

use serde::Serialize;

use crate::words::{Word, contains_phrase, find_phrase, norms};

/// A bookable day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Day {
    /// Key 1, "today".
    Today,
    /// Key 2, "tomorrow".
    Tomorrow,
    /// Key 3, "the day after tomorrow".
    DayAfterTomorrow,
    /// The coming Monday.
    Monday,
    /// The coming Tuesday.
    Tuesday,
    /// The coming Wednesday.
    Wednesday,
    /// The coming Thursday.
    Thursday,
    /// The coming Friday.
    Friday,
    /// The coming Saturday.
    Saturday,
    /// The coming Sunday.
    Sunday,
}

const WEEKDAYS: [(&str, Day); 7] = [
    ("monday", Day::Monday),
    ("tuesday", Day::Tuesday),
    ("wednesday", Day::Wednesday),
    ("thursday", Day::Thursday),
    ("friday", Day::Friday),
    ("saturday", Day::Saturday),
    ("sunday", Day::Sunday),
];

impl Day {
    /// The day for a keypad answer (1 today, 2 tomorrow, 3 the day after tomorrow).
    pub fn from_key(key: char) -> Option<Day> {
        match key {
            '1' => Some(Day::Today),
            '2' => Some(Day::Tomorrow),
            '3' => Some(Day::DayAfterTomorrow),
            _ => None,
        }
    }

    /// The day as stored in an extraction or caller memory ("tomorrow", "monday").
    pub fn from_id(id: &str) -> Option<Day> {
        match id {
            "today" => Some(Day::Today),
            "tomorrow" => Some(Day::Tomorrow),
            "day_after_tomorrow" => Some(Day::DayAfterTomorrow),
            other => WEEKDAYS.iter().find(|(n, _)| *n == other).map(|(_, d)| *d),
        }
    }

    /// How the receptionist says it.
    pub fn spoken(self) -> &'static str {
        match self {
            Day::Today => "today",
            Day::Tomorrow => "tomorrow",
            Day::DayAfterTomorrow => "the day after tomorrow",
            Day::Monday => "Monday",
            Day::Tuesday => "Tuesday",
            Day::Wednesday => "Wednesday",
            Day::Thursday => "Thursday",
            Day::Friday => "Friday",
            Day::Saturday => "Saturday",
            Day::Sunday => "Sunday",
        }
    }
}

/// A time of day on the 24-hour clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClockTime {
    /// 0-23.
    pub hour: u8,
    /// 0-59.
    pub minute: u8,
}

impl ClockTime {
    /// A valid time, or `None`.
    pub fn new(hour: u32, minute: u32) -> Option<ClockTime> {
        (hour < 24 && minute < 60).then_some(ClockTime {
            hour: hour as u8,
            minute: minute as u8,
        })
    }

    /// Parses "HH:MM" as stored in extractions.
    pub fn from_hhmm(text: &str) -> Option<ClockTime> {
        let (h, m) = text.split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        ClockTime::new(h.parse().ok()?, m.parse().ok()?)
    }

    /// The part of the day the time falls in.
    pub fn slot(self) -> Slot {
        match self.hour {
            0..=11 => Slot::Morning,
            12..=16 => Slot::Afternoon,
            _ => Slot::Evening,
        }
    }
}

impl fmt::Display for ClockTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

/// A part of the day; also the keypad's time slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Slot {
    /// Key 1, 10:00.
    Morning,
    /// Key 2, 14:00.
    Afternoon,
    /// Key 3, 18:00.
    Evening,
}

impl Slot {
    /// The slot for a keypad answer.
    pub fn from_key(key: char) -> Option<Slot> {
        match key {
            '1' => Some(Slot::Morning),
            '2' => Some(Slot::Afternoon),
            '3' => Some(Slot::Evening),
            _ => None,
        }
    }

    /// The slot as stored in caller memory.
    pub fn from_id(id: &str) -> Option<Slot> {
        match id {
            "morning" => Some(Slot::Morning),
            "afternoon" => Some(Slot::Afternoon),
            "evening" => Some(Slot::Evening),
            _ => None,
        }
    }

    /// The slot's default time: 10:00, 14:00 or 18:00.
    pub fn time(self) -> ClockTime {
        let hour = match self {
            Slot::Morning => 10,
            Slot::Afternoon => 14,
            Slot::Evening => 18,
        };
        ClockTime { hour, minute: 0 }
    }

    /// How the receptionist says it.
    pub fn spoken(self) -> &'static str {
        match self {
            Slot::Morning => "morning",
            Slot::Afternoon => "afternoon",
            Slot::Evening => "evening",
        }
    }
}

/// The day a caller named, if any ("day after tomorrow" wins over "tomorrow").
pub fn day(words: &[Word]) -> Option<Day> {
    let n = norms(words);
    if contains_phrase(&n, "day after tomorrow") {
        return Some(Day::DayAfterTomorrow);
    }
    // whisper writes "tomorrow at 10" as "tomorrow's 10" at times.
    if n.contains(&"tomorrow") || n.contains(&"tomorrows") {
        return Some(Day::Tomorrow);
    }
    if n.contains(&"today")
        || n.contains(&"todays")
        || n.contains(&"tonight")
        || ["this morning", "this afternoon", "this evening"]
            .iter()
            .any(|p| contains_phrase(&n, p))
    {
        return Some(Day::Today);
    }
    n.iter()
        .find_map(|w| WEEKDAYS.iter().find(|(name, _)| name == w).map(|(_, d)| *d))
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
        _ => None,
    }
}

/// A number 0-59 at `i` (digits or words such as "forty five"); value and words used.
fn number_at(n: &[&str], i: usize) -> Option<(u32, usize)> {
    let word = *n.get(i)?;
    if !word.is_empty() && word.len() <= 2 && word.chars().all(|c| c.is_ascii_digit()) {
        return word.parse().ok().map(|v| (v, 1));
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

/// Minutes after an hour word: "thirty", "fifteen", "oh five", "05"; value and words used.
fn minutes_at(n: &[&str], i: usize) -> Option<(u32, usize)> {
    let word = *n.get(i)?;
    if word == "oh" || word == "o" {
        let (v, used) = number_at(n, i + 1)?;
        return (v < 10).then_some((v, used + 1));
    }
    let (v, used) = number_at(n, i)?;
    ((10..60).contains(&v) || (word.len() == 2 && word.starts_with('0'))).then_some((v, used))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meridiem {
    Am,
    Pm,
}

/// An hour and minute as said, before am/pm is applied; `sure` when the phrasing
/// marks it as a time ("at", "o'clock", "am", "half past", "10:30").
struct SaidTime {
    hour: u32,
    minute: u32,
    sure: bool,
}

fn said_time(n: &[&str]) -> Option<SaidTime> {
    for i in 0..n.len() {
        let word = n[i];
        if word == "noon" || word == "midday" {
            return Some(SaidTime {
                hour: 12,
                minute: 0,
                sure: true,
            });
        }
        if let Some((h, m)) = word.split_once(':')
            && let (Ok(hour), Ok(minute)) = (h.parse(), m.parse())
        {
            return Some(SaidTime {
                hour,
                minute,
                sure: true,
            });
        }
        // "half past two", "quarter past ten", "quarter to eleven", "twenty past nine".
        let before = match word {
            "half" => Some(30),
            "quarter" => Some(15),
            _ => number_at(n, i)
                .filter(|(_, used)| *used == 1)
                .map(|(v, _)| v),
        };
        if let Some(offset) = before
            && let Some(relation) = n.get(i + 1).map(|w| {
                if *w == "minutes" {
                    n.get(i + 2).copied().unwrap_or("")
                } else {
                    *w
                }
            })
            && (relation == "past" || relation == "after" || relation == "to")
        {
            let skip = if n.get(i + 1) == Some(&"minutes") {
                3
            } else {
                2
            };
            if let Some((hour, _)) = number_at(n, i + skip)
                && (1..=12).contains(&hour)
                && offset < 60
            {
                let (hour, minute) = if relation == "to" {
                    (if hour == 1 { 12 } else { hour - 1 }, 60 - offset)
                } else {
                    (hour, offset)
                };
                if word != "half" || relation != "to" {
                    return Some(SaidTime {
                        hour,
                        minute,
                        sure: true,
                    });
                }
            }
        }
        if let Some((hour, used)) = number_at(n, i)
            && used == 1
            && (1..=23).contains(&hour)
        {
            let (minute, used_minutes) = if hour <= 12 {
                minutes_at(n, i + 1).unwrap_or((0, 0))
            } else {
                (0, 0)
            };
            let after = n.get(i + 1 + used_minutes).copied().unwrap_or("");
            let previous = i
                .checked_sub(1)
                .and_then(|p| n.get(p))
                .copied()
                .unwrap_or("");
            let sure = word.chars().all(|c| c.is_ascii_digit()) && used_minutes > 0
                || matches!(after, "oclock" | "am" | "pm" | "in" | "hours")
                // whisper hears "tomorrow at ten" as "tomorrow's 10" at times.
                || matches!(previous, "at" | "around" | "about" | "by" | "tomorrows" | "todays");
            return Some(SaidTime { hour, minute, sure });
        }
    }
    None
}

fn meridiem(n: &[&str]) -> Option<Meridiem> {
    for (i, word) in n.iter().enumerate() {
        let greeting = i > 0 && n[i - 1] == "good";
        match *word {
            "am" => return Some(Meridiem::Am),
            "pm" | "tonight" => return Some(Meridiem::Pm),
            "morning" if !greeting => return Some(Meridiem::Am),
            "afternoon" | "evening" | "night" if !greeting => return Some(Meridiem::Pm),
            _ => {}
        }
    }
    None
}

fn part_of_day(n: &[&str]) -> Option<Slot> {
    for (i, word) in n.iter().enumerate() {
        if i > 0 && n[i - 1] == "good" {
            continue;
        }
        match *word {
            "morning" => return Some(Slot::Morning),
            "afternoon" | "lunchtime" => return Some(Slot::Afternoon),
            "evening" | "tonight" | "night" => return Some(Slot::Evening),
            _ => {}
        }
    }
    None
}

/// The time a caller named. With `lenient` (the caller was asked for a time) a bare number
/// counts ("Ten."); otherwise the phrasing must mark it ("at ten", "10 am", "half past two").
/// Without am/pm, hours 1-7 are afternoon and evening (clinic hours); a part of the day alone
/// means its slot (morning 10:00, afternoon 14:00, evening 18:00). Good-morning greetings
/// do not count.
pub fn time(words: &[Word], lenient: bool) -> Option<ClockTime> {
    let n = norms(words);
    let said = said_time(&n).filter(|t| t.sure || lenient);
    let Some(said) = said else {
        return part_of_day(&n).map(Slot::time);
    };
    let mut hour = said.hour;
    match meridiem(&n) {
        Some(Meridiem::Pm) if hour < 12 => hour += 12,
        Some(Meridiem::Am) if hour == 12 => hour = 0,
        None if (1..=7).contains(&hour) => hour += 12,
        _ => {}
    }
    ClockTime::new(hour, said.minute)
}

/// Words that end a name ("John, and I'd like…").
const NAME_STOPS: &[&str] = &[
    "and", "i", "im", "ive", "id", "calling", "speaking", "here", "please", "from", "for", "to",
    "with", "thanks", "thank", "but", "so", "who", "on", "at",
];

/// Words that are never part of a name.
const NOT_NAMES: &[&str] = &[
    "yes",
    "yeah",
    "no",
    "ok",
    "okay",
    "um",
    "uh",
    "hmm",
    "hello",
    "hi",
    "sorry",
    "appointment",
    "book",
    "doctor",
    "tomorrow",
    "today",
    "morning",
    "afternoon",
    "evening",
    "the",
    "a",
    "an",
    "is",
    "my",
    "name",
    "what",
    "not",
    "sure",
    "dont",
    "know",
    "it",
    "its",
    "this",
];

/// Phrases that introduce a name in any answer.
const NAME_MARKERS: &[&str] = &[
    "patients name is",
    "patient name is",
    "my name is",
    "my names",
    "name is",
    "names",
    "call me",
];

/// Phrases that introduce a name when the caller was asked for it.
const ASKED_NAME_MARKERS: &[&str] = &[
    "the patient is",
    "this is",
    "i am",
    "im",
    "it is",
    "its",
    "its for",
];

/// The patient's name. With `asked` (the caller was asked for it) a bare answer counts
/// ("John Smith."); otherwise only an explicit "my name is …".
pub fn name(words: &[Word], asked: bool) -> Option<String> {
    let n = norms(words);
    let marker_end = NAME_MARKERS
        .iter()
        .chain(if asked { ASKED_NAME_MARKERS } else { &[] })
        .filter_map(|m| find_phrase(&n, m).map(|at| (at, at + m.split_whitespace().count())))
        .min_by_key(|(at, end)| (*at, std::cmp::Reverse(*end)))
        .map(|(_, end)| end);
    let start = match marker_end {
        Some(end) => end,
        None if asked => words.iter().position(|w| {
            !matches!(
                w.norm.as_str(),
                "um" | "uh"
                    | "hi"
                    | "hello"
                    | "yes"
                    | "yeah"
                    | "sure"
                    | "ok"
                    | "okay"
                    | "well"
                    | "so"
            )
        })?,
        None => return None,
    };
    let mut parts = Vec::new();
    for word in words.get(start..)? {
        if NAME_STOPS.contains(&word.norm.as_str()) {
            break;
        }
        if NOT_NAMES.contains(&word.norm.as_str())
            || !word.norm.chars().all(char::is_alphabetic)
            || parts.len() == 4
        {
            return None;
        }
        parts.push(capitalised(&word.raw));
        if word.ends_clause {
            break;
        }
    }
    // Anything after the name in a bare answer makes it something else ("Tomorrow at ten").
    (!parts.is_empty()).then(|| parts.join(" "))
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) if word.chars().all(|c| !c.is_uppercase()) => {
            first.to_uppercase().chain(chars).collect()
        }
        _ => word.to_string(),
    }
}

/// A yes (`Some(true)`) or no (`Some(false)`) answer; negatives win ("no, that's not right").
pub fn yes_no(words: &[Word]) -> Option<bool> {
    let n = norms(words);
    const NO: &[&str] = &[
        "no",
        "nope",
        "nah",
        "not",
        "wrong",
        "incorrect",
        "isnt",
        "dont",
        "cancel",
        "change",
    ];
    const YES: &[&str] = &[
        "yes",
        "yeah",
        "yep",
        "yup",
        "ya",
        "correct",
        "right",
        "sure",
        "ok",
        "okay",
        "confirm",
        "confirmed",
        "absolutely",
        "perfect",
        "great",
        "fine",
        "exactly",
        "definitely",
        "affirmative",
        "good",
    ];
    if n.iter().any(|w| NO.contains(w)) {
        Some(false)
    } else if n.iter().any(|w| YES.contains(w)) || contains_phrase(&n, "sounds good") {
        Some(true)
    } else {
        None
    }
}

/// Whether the caller asks for an appointment.
pub fn wants_booking(words: &[Word]) -> bool {
    let n = norms(words);
    const WORDS: &[&str] = &[
        "appointment",
        "appointments",
        "book",
        "booking",
        "schedule",
        "reserve",
        "consultation",
        "consult",
        "visit",
        "checkup",
        "slot",
    ];
    n.iter().any(|w| WORDS.contains(w))
        || ["see a doctor", "see the doctor", "see doctor", "check up"]
            .iter()
            .any(|p| contains_phrase(&n, p))
}

/// Lead-ins stripped from a reason ("I have a bad cough" → "a bad cough"), longest first.
const REASON_LEAD_INS: &[&str] = &[
    "i am suffering from",
    "im suffering from",
    "i have been having",
    "i have had",
    "ive had",
    "ive been having",
    "i have got",
    "ive got",
    "i am having",
    "im having",
    "the reason is",
    "its because of",
    "its because",
    "because of",
    "because",
    "i have",
    "ive",
    "i got",
    "i need",
    "its for",
    "it is",
    "its",
    "for",
    "suffering from",
    "um",
    "uh",
    "well",
];

/// The reason for the visit in the caller's words, lead-ins removed and at most 200 characters.
pub fn reason(words: &[Word]) -> Option<String> {
    let mut start = 0;
    'strip: loop {
        let n = norms(words.get(start..).unwrap_or(&[]));
        for lead in REASON_LEAD_INS {
            let len = lead.split_whitespace().count();
            if find_phrase(&n, lead) == Some(0) && n.len() > len {
                start += len;
                continue 'strip;
            }
        }
        break;
    }
    let rest = words.get(start..).unwrap_or(&[]);
    let mut text = String::new();
    for (i, word) in rest.iter().enumerate() {
        if text.len() + word.raw.len() > 200 {
            break;
        }
        if i > 0 {
            text.push(' ');
        }
        // The sentence's capital goes ("Bad cough" → "bad cough"); names and "I" stay.
        let pronoun_i = word.raw == "I" || word.raw.starts_with("I'");
        if i == 0 && !pronoun_i && word.raw.chars().skip(1).all(|c| !c.is_uppercase()) {
            text.push_str(&word.raw.to_lowercase());
        } else {
            text.push_str(&word.raw);
        }
    }
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::words::words;

    fn t(text: &str, lenient: bool) -> Option<String> {
        time(&words(text), lenient).map(|t| t.to_string())
    }

    #[test]
    fn days() {
        let d = |text: &str| day(&words(text));
        assert_eq!(d("Tomorrow."), Some(Day::Tomorrow));
        assert_eq!(d("tomorrow morning please"), Some(Day::Tomorrow));
        assert_eq!(d("The day after tomorrow."), Some(Day::DayAfterTomorrow));
        assert_eq!(d("Today, if possible."), Some(Day::Today));
        assert_eq!(d("This evening."), Some(Day::Today));
        assert_eq!(d("Next Monday."), Some(Day::Monday));
        assert_eq!(d("On Friday at ten."), Some(Day::Friday));
        assert_eq!(d("I'm not sure."), None);
        assert_eq!(d("Sunday"), Some(Day::Sunday));
        assert_eq!(Day::from_id("wednesday"), Some(Day::Wednesday));
        assert_eq!(Day::from_id("someday"), None);
    }

    #[test]
    fn times_asked_for() {
        for (said, expected) in [
            ("10", "10:00"),
            ("10.", "10:00"),
            ("Ten.", "10:00"),
            ("ten", "10:00"),
            ("10 a.m.", "10:00"),
            ("10am", "10:00"),
            ("10 AM.", "10:00"),
            ("Ten o'clock in the morning.", "10:00"),
            ("Ten in the morning.", "10:00"),
            ("10 in the morning.", "10:00"),
            ("At 10 o'clock.", "10:00"),
            ("half past two", "14:30"),
            ("Half past two, please.", "14:30"),
            ("Quarter past ten.", "10:15"),
            ("Quarter to eleven.", "10:45"),
            ("Twenty past nine.", "09:20"),
            ("2:30 pm", "14:30"),
            ("2:30 p.m.", "14:30"),
            ("2.30", "14:30"),
            ("Two thirty.", "14:30"),
            ("ten fifteen", "10:15"),
            ("nine oh five", "09:05"),
            ("Four forty five.", "16:45"),
            ("Three.", "15:00"),
            ("three in the afternoon", "15:00"),
            ("Six in the evening.", "18:00"),
            ("16:00", "16:00"),
            ("Noon.", "12:00"),
            ("Morning.", "10:00"),
            ("In the afternoon, please.", "14:00"),
            ("Evening.", "18:00"),
            ("Sometime in the morning would be good.", "10:00"),
            ("11 in the morning", "11:00"),
            ("12 pm", "12:00"),
            ("8 pm", "20:00"),
        ] {
            assert_eq!(t(said, true).as_deref(), Some(expected), "{said}");
        }
        assert_eq!(t("I'm not sure.", true), None);
        assert_eq!(t("Good morning.", true), None);
        assert_eq!(t("", true), None);
    }

    #[test]
    fn times_in_passing_need_clear_phrasing() {
        assert_eq!(
            t("book for tomorrow at ten", false).as_deref(),
            Some("10:00")
        );
        assert_eq!(
            t("tomorrow morning please", false).as_deref(),
            Some("10:00")
        );
        assert_eq!(t("Good morning, I'd like an appointment", false), None);
        assert_eq!(t("I've had a cough for 2 days", false), None);
        assert_eq!(t("Tomorrow at 2:30 p.m.", false).as_deref(), Some("14:30"));
        assert_eq!(t("Tomorrow, 3 pm.", false).as_deref(), Some("15:00"));
    }

    #[test]
    fn names() {
        let asked = |text: &str| name(&words(text), true);
        assert_eq!(
            asked("My name is John Smith.").as_deref(),
            Some("John Smith")
        );
        assert_eq!(asked("John Smith.").as_deref(), Some("John Smith"));
        assert_eq!(asked("john smith").as_deref(), Some("John Smith"));
        assert_eq!(asked("It's Priya.").as_deref(), Some("Priya"));
        assert_eq!(
            asked("This is Ravi Kumar speaking.").as_deref(),
            Some("Ravi Kumar")
        );
        assert_eq!(
            asked("I am Asha, and I need a doctor.").as_deref(),
            Some("Asha")
        );
        assert_eq!(asked("Um, Mary O'Brien.").as_deref(), Some("Mary O'Brien"));
        assert_eq!(asked("Yes."), None);
        assert_eq!(asked("Tomorrow."), None);
        assert_eq!(asked("I'm not sure."), None);
        assert_eq!(asked("My name is 42"), None);
        assert_eq!(asked("one two three four five six"), None);
        let passing = |text: &str| name(&words(text), false);
        assert_eq!(
            passing("Hi, my name is John Smith, I'd like an appointment.").as_deref(),
            Some("John Smith")
        );
        assert_eq!(passing("I am having a cough"), None);
        assert_eq!(passing("John Smith"), None);
    }

    #[test]
    fn yes_and_no() {
        let yn = |text: &str| yes_no(&words(text));
        for yes in [
            "Yes.",
            "Yeah.",
            "Yes, that's right.",
            "Correct.",
            "That's correct!",
            "Yep",
            "Okay.",
        ] {
            assert_eq!(yn(yes), Some(true), "{yes}");
        }
        for no in [
            "No.",
            "No, that's not right.",
            "Nope.",
            "That's wrong.",
            "Incorrect.",
        ] {
            assert_eq!(yn(no), Some(false), "{no}");
        }
        assert_eq!(yn("Maybe."), None);
    }

    #[test]
    fn booking_intent() {
        assert!(wants_booking(&words(
            "I would like to book an appointment."
        )));
        assert!(wants_booking(&words("Can I see the doctor tomorrow?")));
        assert!(wants_booking(&words("I need a check-up.")));
        assert!(!wants_booking(&words("What are your opening hours?")));
    }

    #[test]
    fn reasons() {
        let r = |text: &str| reason(&words(text));
        assert_eq!(r("I have a bad cough.").as_deref(), Some("a bad cough"));
        assert_eq!(r("I've got a fever.").as_deref(), Some("a fever"));
        assert_eq!(r("Because of back pain.").as_deref(), Some("back pain"));
        assert_eq!(r("Headache.").as_deref(), Some("headache"));
        assert_eq!(
            r("For my son Ravi's check-up").as_deref(),
            Some("my son Ravi's check up")
        );
        assert_eq!(r("A rash.").as_deref(), Some("a rash"));
        assert_eq!(
            r("I have had a bad cough for a week.").as_deref(),
            Some("a bad cough for a week")
        );
        assert_eq!(
            r("I think it's the flu").as_deref(),
            Some("I think it's the flu")
        );
        assert_eq!(r("I have").as_deref(), Some("I have"));
        assert_eq!(r(""), None);
        assert!(r(&"cough ".repeat(100)).unwrap().len() <= 200);
    }
}
