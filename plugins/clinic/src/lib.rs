//! The clinic receptionist: books an appointment by keypad or by voice (rule-based).
//!
//! Greeting (by name for known callers, with their last booking for returning ones; the
//! clinic's name comes from the tenant's `clinic_name` setting), then "Press 1 to book an
//! appointment, or tell me what you need."
//!
//! Keypad: day (1 today, 2 tomorrow, 3 the day after tomorrow) → slot (1 morning 10:00,
//! 2 afternoon 14:00, 3 evening 18:00) → confirm with 1 (2 starts over). Wrong keys and
//! silence repeat the current question.
//!
//! Voice: the caller asks for an appointment (or just starts answering); the receptionist asks
//! in turn for whatever is still missing of the patient's name, the day, the time and the
//! reason (an answer may fill several: "tomorrow at ten"), reads the booking back ("…, is that
//! right?"), books it on a yes and starts again on a no. An answer it does not understand is
//! asked again once; a second miss offers the keypad. Urgent symptoms (chest pain, breathing
//! difficulty, …) get emergency advice at once.
//!
//! A booking is submitted as the `appointment` extraction and saved in caller memory
//! `{ "last_booking": … }`, then the receptionist says goodbye and hangs up; the reason for
//! the visit is also submitted as the `symptoms` extraction. A spoken name is remembered with
//! the caller's profile.
//!
//! With an LLM (the tenant has one and its plugin configuration does not say `"use_llm": false`)
//! the conversation after the greeting comes from the model instead: see [`assistant`]. Keys
//! switch such a call to the keypad flow, and a failing model to the rule-based questions.
//!
//! When the call ends (and as soon as something is booked) the plugin sets the call's summary
//! from the booking and any emergency advice given.

pub mod assistant;
mod parse;
mod symptoms;
mod words;

use serde::Serialize;
use vaani_plugin_sdk::*;

pub use parse::{ClockTime, Day, Slot};
pub use symptoms::{EMERGENCY_ADVICE, SYMPTOMS_SCHEMA, Symptoms};

use words::Word;

/// Id of the extraction schema this plugin submits bookings against.
pub const APPOINTMENT_SCHEMA: &str = "appointment";

const MENU_PROMPT: &str = "Press 1 to book an appointment, or tell me what you need.";
const KEYPAD_MENU_PROMPT: &str = "Press 1 to book an appointment.";
const DAY_PROMPT: &str =
    "Which day would you like? Press 1 for today, 2 for tomorrow, or 3 for the day after tomorrow.";
const SLOT_PROMPT: &str = "Which time suits you? Press 1 for morning at 10:00, 2 for afternoon at 14:00, or 3 for evening at 18:00.";
const INVALID_KEY: &str = "Sorry, that is not one of the options.";
const NAME_QUESTION: &str = "May I have the patient's name, please?";
const DAY_QUESTION: &str =
    "Which day would you like to come in? For example today, tomorrow, or Monday.";
const TIME_QUESTION: &str = "What time would suit you? For example 10 in the morning.";
const REASON_QUESTION: &str = "And what is the reason for the visit?";
const NOT_UNDERSTOOD: &str = "Sorry, I didn't catch that.";
const USE_KEYPAD: &str = "Sorry, I still didn't understand. You can use the keypad instead.";
const START_AGAIN: &str = "Let's start again.";
const OPENING_HOURS: &str =
    "Sorry, the clinic sees patients between 8 in the morning and 8 in the evening.";

/// First and last bookable times (clinic hours 08:00-20:00).
const OPENS: ClockTime = ClockTime { hour: 8, minute: 0 };
const LAST_APPOINTMENT: ClockTime = ClockTime {
    hour: 19,
    minute: 59,
};

/// The booking submitted as the `appointment` extraction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Appointment {
    /// Chosen day.
    pub day: Day,
    /// Part of the day the time falls in.
    pub slot: Slot,
    /// Start, "HH:MM".
    pub time: String,
    /// Caller number.
    pub caller: String,
    /// Patient name, when the caller gave it or is known by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient_name: Option<String>,
    /// Reason for the visit in the caller's words, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Calendar date, "YYYY-MM-DD" (bookings made by the LLM, which resolves dates).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
}

/// "tomorrow morning at 10:00".
fn when(day: Day, time: ClockTime) -> String {
    format!("{} {} at {time}", day.spoken(), time.slot().spoken())
}

/// A question the receptionist can ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Name,
    Day,
    Time,
    Reason,
}

/// Where the caller is in the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Step {
    /// The opening question: keypad 1 or any request.
    #[default]
    Menu,
    /// Waiting for one answer.
    Ask(Field),
    /// The booking was read back; waiting for yes or no.
    Confirm,
    /// Booked; the call is ending.
    Done,
}

/// What is known of the booking so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Draft {
    name: Option<String>,
    day: Option<Day>,
    time: Option<ClockTime>,
    reason: Option<String>,
}

/// Clinic name used when the tenant configures none.
pub const DEFAULT_CLINIC_NAME: &str = "our clinic";

/// The clinic plugin.
#[derive(Default)]
pub struct Clinic {
    step: Step,
    draft: Draft,
    /// The caller chose (or fell back to) the keypad: keypad prompts, no name or reason questions.
    keypad: bool,
    /// Answers to the current question that were not understood.
    misses: u8,
    /// An urgent symptom was mentioned on this call.
    urgent: bool,
    /// The answer being handled got emergency advice.
    advised: bool,
    caller: String,
    caller_name: Option<String>,
    /// The booking made on this call.
    booked: Option<Appointment>,
    /// The LLM conversation while the call is in LLM mode.
    assistant: Option<assistant::Assistant>,
}

/// The `clinic_name` setting from the tenant's plugin configuration.
fn clinic_name(ctx: &CallerContext) -> String {
    serde_json::from_str::<serde_json::Value>(&ctx.config_json)
        .ok()
        .and_then(|config| {
            config["clinic_name"]
                .as_str()
                .map(str::trim)
                .map(str::to_string)
        })
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| DEFAULT_CLINIC_NAME.to_string())
}

/// "tomorrow morning at 10:00" for the booking a previous call saved in memory.
fn last_booking(ctx: &CallerContext) -> Option<String> {
    let memory = ctx.memory()?;
    let booking = memory.get("last_booking")?;
    let day = Day::from_id(booking.get("day")?.as_str()?)?;
    let slot = Slot::from_id(booking.get("slot")?.as_str()?)?;
    let time = booking
        .get("time")
        .and_then(|t| t.as_str())
        .and_then(ClockTime::from_hhmm)
        .filter(|t| t.slot() == slot)
        .unwrap_or(slot.time());
    Some(when(day, time))
}

impl Clinic {
    /// The next question, or `Confirm` once everything needed is known.
    fn next_step(&self) -> Step {
        let d = &self.draft;
        if d.name.is_none() && !self.keypad {
            Step::Ask(Field::Name)
        } else if d.day.is_none() {
            Step::Ask(Field::Day)
        } else if d.time.is_none() {
            Step::Ask(Field::Time)
        } else if d.reason.is_none() && !self.keypad {
            Step::Ask(Field::Reason)
        } else {
            Step::Confirm
        }
    }

    fn prompt(&self) -> String {
        let d = &self.draft;
        match self.step {
            Step::Menu if self.keypad => KEYPAD_MENU_PROMPT.to_string(),
            Step::Menu => MENU_PROMPT.to_string(),
            Step::Ask(Field::Name) => NAME_QUESTION.to_string(),
            Step::Ask(Field::Day) if self.keypad => DAY_PROMPT.to_string(),
            Step::Ask(Field::Day) => DAY_QUESTION.to_string(),
            Step::Ask(Field::Time) if self.keypad => SLOT_PROMPT.to_string(),
            Step::Ask(Field::Time) => TIME_QUESTION.to_string(),
            Step::Ask(Field::Reason) => REASON_QUESTION.to_string(),
            Step::Confirm => match (d.day, d.time) {
                (Some(day), Some(time)) if self.keypad => format!(
                    "You chose {}. Press 1 to confirm, or 2 to start again.",
                    when(day, time)
                ),
                (Some(day), Some(time)) => {
                    let mut text = String::from("An appointment");
                    if let Some(name) = &d.name {
                        text.push_str(&format!(" for {name}"));
                    }
                    text.push_str(&format!(" {}", when(day, time)));
                    if let Some(reason) = &d.reason {
                        text.push_str(&format!(", for {reason}"));
                    }
                    text.push_str(", is that right?");
                    text
                }
                _ => String::new(),
            },
            Step::Done => String::new(),
        }
    }

    fn ask(&self, call: &mut Call) -> Result {
        let prompt = self.prompt();
        if !prompt.is_empty() {
            call.say(prompt)?;
        }
        Ok(())
    }

    /// Moves on to whatever is missing and asks it.
    fn advance(&mut self, call: &mut Call) -> Result {
        let next = self.next_step();
        if next != self.step {
            self.misses = 0;
        }
        self.step = next;
        self.ask(call)
    }

    /// An answer that was not understood: ask again once, then offer the keypad. After
    /// emergency advice the question is simply asked again.
    fn missed(&mut self, call: &mut Call) -> Result {
        if self.advised {
            return self.ask(call);
        }
        self.misses += 1;
        if self.misses < 2 {
            call.say(NOT_UNDERSTOOD)?;
            return self.ask(call);
        }
        self.misses = 0;
        self.keypad = true;
        call.say(USE_KEYPAD)?;
        if let Step::Ask(_) = self.step {
            // Name and reason cannot be keyed in: skip to what the keypad can answer.
            self.step = self.next_step();
        }
        self.ask(call)
    }

    fn reprompt(&self, call: &mut Call) -> Result {
        call.say(INVALID_KEY)?;
        self.ask(call)
    }

    fn start_again(&mut self, call: &mut Call) -> Result {
        self.draft = Draft {
            name: if self.keypad {
                self.caller_name.clone()
            } else {
                None
            },
            ..Draft::default()
        };
        call.say(START_AGAIN)?;
        self.advance(call)
    }

    fn book(&mut self, call: &mut Call) -> Result {
        let (Some(day), Some(time)) = (self.draft.day, self.draft.time) else {
            return self.advance(call);
        };
        let appointment = Appointment {
            day,
            slot: time.slot(),
            time: time.to_string(),
            caller: self.caller.clone(),
            patient_name: self.draft.name.clone(),
            reason: self.draft.reason.clone(),
            date: None,
        };
        call.extract(APPOINTMENT_SCHEMA, &appointment)?;
        call.set_memory(&json!({ "last_booking": appointment }))?;
        self.booked = Some(appointment);
        self.set_booking_summary(call);
        self.step = Step::Done;
        call.say(format!(
            "Your appointment is booked for {}. Goodbye.",
            when(day, time)
        ))?;
        call.hangup();
        Ok(())
    }

    /// The call's summary from what was booked and any emergency advice (none if neither).
    fn summary(&self) -> Option<(String, Sentiment)> {
        let mut parts = Vec::new();
        if let Some(booked) = &self.booked {
            let time = ClockTime::from_hhmm(&booked.time).unwrap_or(booked.slot.time());
            let mut text = String::from("Booked an appointment");
            if let Some(name) = &booked.patient_name {
                text.push_str(&format!(" for {name}"));
            }
            text.push_str(&format!(" {}", when(booked.day, time)));
            if let Some(date) = &booked.date {
                text.push_str(&format!(" ({date})"));
            }
            if let Some(reason) = &booked.reason {
                text.push_str(&format!(", reason: {reason}"));
            }
            text.push('.');
            parts.push(text);
        }
        if self.urgent {
            parts.push(
                "The caller described urgent symptoms and was given the emergency advice."
                    .to_string(),
            );
        }
        if parts.is_empty() {
            return None;
        }
        let sentiment = if self.urgent {
            Sentiment::Neutral
        } else {
            Sentiment::Positive
        };
        let mut summary = parts.join(" ");
        if summary.len() > 2000 {
            let cut = (0..=2000)
                .rev()
                .find(|&i| summary.is_char_boundary(i))
                .unwrap_or(0);
            summary.truncate(cut);
        }
        Some((summary, sentiment))
    }

    /// Sets the call's summary now (a booking was made); failures are only logged.
    fn set_booking_summary(&self, call: &mut Call) {
        if let Some((summary, sentiment)) = self.summary()
            && let Err(error) = call.set_summary(&summary, Some(sentiment))
        {
            call.log(
                LogLevel::Warn,
                format!("could not set the summary: {}", error.message()),
            );
        }
    }

    /// Records the patient's name, and remembers it with the caller's profile.
    fn set_name(&mut self, call: &mut Call, name: String) -> Result {
        if self.caller_name.as_deref() != Some(name.as_str()) {
            call.set_caller_name(&name)?;
            self.caller_name = Some(name.clone());
        }
        self.draft.name = Some(name);
        Ok(())
    }

    /// Sets the time unless it is outside clinic hours (then says so and returns false).
    fn set_time(&mut self, call: &mut Call, time: ClockTime) -> Result<bool> {
        if time < OPENS || time > LAST_APPOINTMENT {
            call.say(OPENING_HOURS)?;
            return Ok(false);
        }
        self.draft.time = Some(time);
        Ok(true)
    }

    fn submit_symptoms(
        &mut self,
        call: &mut Call,
        reason: String,
        keywords: Vec<String>,
    ) -> Result {
        let symptoms = Symptoms {
            reason,
            urgent: self.urgent,
            keywords,
        };
        call.extract(SYMPTOMS_SCHEMA, &symptoms)?;
        Ok(())
    }

    /// Day and time said in passing ("tomorrow at ten") fill what they name.
    fn take_day_and_time(
        &mut self,
        call: &mut Call,
        words: &[Word],
        lenient: bool,
    ) -> Result<bool> {
        let mut understood = false;
        if let Some(day) = parse::day(words) {
            self.draft.day = Some(day);
            understood = true;
        }
        if let Some(time) = parse::time(words, lenient) {
            understood = true;
            self.set_time(call, time)?;
        }
        Ok(understood)
    }

    fn on_speech(&mut self, call: &mut Call, text: &str) -> Result {
        let words = words::words(text);
        if words.is_empty() || self.step == Step::Done {
            return Ok(());
        }
        let (keywords, urgent) = symptoms::assess(&words);
        let mut symptoms_sent = false;
        self.advised = urgent;
        if urgent {
            self.urgent = true;
            call.say_with(
                EMERGENCY_ADVICE,
                SayOptions {
                    interruptible: false,
                    ..SayOptions::default()
                },
            )?;
            let reason = parse::reason(&words).unwrap_or_else(|| text.trim().to_string());
            self.submit_symptoms(call, reason.clone(), keywords.clone())?;
            symptoms_sent = true;
            if self.draft.reason.is_none() && self.step != Step::Confirm {
                self.draft.reason = Some(reason);
            }
        }
        match self.step {
            Step::Done => Ok(()),
            Step::Menu => {
                let name = parse::name(&words, false);
                let understood = self.take_day_and_time(call, &words, false)?
                    | name.is_some()
                    | !keywords.is_empty()
                    | parse::wants_booking(&words);
                if !understood {
                    return self.missed(call);
                }
                self.keypad = false;
                if let Some(name) = name.or_else(|| self.caller_name.clone()) {
                    self.set_name(call, name)?;
                }
                if !keywords.is_empty() && self.draft.reason.is_none() {
                    self.draft.reason = parse::reason(&words);
                    if let Some(reason) = self.draft.reason.clone() {
                        self.submit_symptoms(call, reason, keywords)?;
                    }
                }
                self.advance(call)
            }
            Step::Ask(Field::Name) => {
                let passing = self.take_day_and_time(call, &words, false)?;
                match parse::name(&words, true) {
                    Some(name) => {
                        self.set_name(call, name)?;
                        self.advance(call)
                    }
                    None if passing => self.advance(call),
                    None => self.missed(call),
                }
            }
            Step::Ask(Field::Day) => {
                let time = parse::time(&words, false);
                match parse::day(&words) {
                    Some(day) => {
                        self.draft.day = Some(day);
                        if let Some(time) = time {
                            self.set_time(call, time)?;
                        }
                        self.advance(call)
                    }
                    None => match time {
                        Some(time) => {
                            self.set_time(call, time)?;
                            self.advance(call)
                        }
                        None => self.missed(call),
                    },
                }
            }
            Step::Ask(Field::Time) => {
                if let Some(day) = parse::day(&words) {
                    self.draft.day = Some(day);
                }
                match parse::time(&words, true) {
                    Some(time) => {
                        if self.set_time(call, time)? {
                            self.advance(call)
                        } else {
                            self.ask(call)
                        }
                    }
                    None => self.missed(call),
                }
            }
            Step::Ask(Field::Reason) => {
                if self.draft.reason.is_none() {
                    self.draft.reason = parse::reason(&words);
                }
                match self.draft.reason.clone() {
                    Some(reason) => {
                        if !symptoms_sent {
                            self.submit_symptoms(call, reason, keywords)?;
                        }
                        self.advance(call)
                    }
                    None => self.missed(call),
                }
            }
            // Emergency words are no answer to "is that right?" ("he is not breathing").
            Step::Confirm if urgent => self.ask(call),
            Step::Confirm => match parse::yes_no(&words) {
                Some(true) => self.book(call),
                Some(false) => {
                    // "No, Monday at three" corrects the booking; a plain no starts again.
                    let before = (self.draft.day, self.draft.time);
                    self.take_day_and_time(call, &words, false)?;
                    if (self.draft.day, self.draft.time) != before {
                        self.advance(call)
                    } else {
                        self.start_again(call)
                    }
                }
                None => self.missed(call),
            },
        }
    }
}

impl Plugin for Clinic {
    fn name() -> &'static str {
        "clinic"
    }

    fn version() -> &'static str {
        env!("CARGO_PKG_VERSION")
    }

    fn schemas() -> Vec<Schema> {
        vec![
            schema(
                APPOINTMENT_SCHEMA,
                "An appointment booked by phone",
                json!({
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "type": "object",
                    "required": ["day", "slot", "time", "caller"],
                    "additionalProperties": false,
                    "properties": {
                        "day": { "enum": [
                            "today", "tomorrow", "day_after_tomorrow", "monday", "tuesday",
                            "wednesday", "thursday", "friday", "saturday", "sunday"
                        ] },
                        "slot": { "enum": ["morning", "afternoon", "evening"] },
                        "time": { "type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$" },
                        "caller": { "type": "string", "minLength": 1 },
                        "patient_name": { "type": "string", "minLength": 1, "maxLength": 200 },
                        "reason": { "type": "string", "minLength": 1, "maxLength": 300 },
                        "date": { "type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$" }
                    }
                }),
            ),
            schema(
                SYMPTOMS_SCHEMA,
                "What the caller said about their health, and whether it sounded urgent",
                json!({
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "type": "object",
                    "required": ["reason", "urgent", "keywords"],
                    "additionalProperties": false,
                    "properties": {
                        "reason": { "type": "string" },
                        "urgent": { "type": "boolean" },
                        "keywords": { "type": "array", "items": { "type": "string" } }
                    }
                }),
            ),
        ]
    }

    fn on_call_started(&mut self, call: &mut Call, ctx: &CallerContext) -> Result {
        self.caller = ctx.caller.clone();
        self.caller_name = ctx
            .caller_name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        let clinic = clinic_name(ctx);
        let greeting = match (&self.caller_name, last_booking(ctx)) {
            (Some(name), Some(booking)) => {
                format!("Welcome back to {clinic}, {name}. Your last booking was for {booking}.")
            }
            (Some(name), None) => format!("Welcome back to {clinic}, {name}."),
            (None, Some(booking)) => {
                format!("Welcome back to {clinic}. Your last booking was for {booking}.")
            }
            (None, None) => format!("Welcome to {clinic}."),
        };
        call.say(&greeting)?;
        if assistant::enabled(ctx) {
            // The greeting stays the plugin's own (no model round trip); the model takes over
            // from the caller's first words.
            self.start_assistant(ctx, &clinic, &format!("{greeting} {}", self.prompt()));
        }
        self.ask(call)
    }

    fn on_dtmf(&mut self, call: &mut Call, digit: char) -> Result {
        if self.assistant.is_some() {
            if self.booked.is_some() {
                return Ok(());
            }
            // Keys mean the caller prefers the keypad: the rule-based flow takes over.
            call.log(
                LogLevel::Info,
                "key pressed: continuing with the keypad flow",
            );
            self.leave_llm(call);
        }
        match (self.step, digit) {
            (Step::Done, _) => Ok(()),
            (Step::Menu, '1') => {
                self.keypad = true;
                self.draft = Draft {
                    name: self.caller_name.clone(),
                    ..Draft::default()
                };
                self.advance(call)
            }
            (Step::Ask(Field::Day), key) => match Day::from_key(key) {
                Some(day) => {
                    self.draft.day = Some(day);
                    self.advance(call)
                }
                None => self.reprompt(call),
            },
            (Step::Ask(Field::Time), key) => match Slot::from_key(key) {
                Some(slot) => {
                    self.draft.time = Some(slot.time());
                    self.advance(call)
                }
                None => self.reprompt(call),
            },
            (Step::Ask(Field::Name | Field::Reason), _) => {
                // Keys mean the caller prefers the keypad: skip what cannot be keyed in.
                self.keypad = true;
                self.advance(call)
            }
            (Step::Confirm, '1') => self.book(call),
            (Step::Confirm, '2') => {
                self.keypad = true;
                self.draft.day = None;
                self.draft.time = None;
                self.advance(call)
            }
            _ => self.reprompt(call),
        }
    }

    fn on_transcript(&mut self, call: &mut Call, utterance: &Utterance, is_final: bool) -> Result {
        if !is_final {
            Ok(())
        } else if self.assistant.is_some() {
            self.llm_speech(call, &utterance.text)
        } else {
            self.on_speech(call, &utterance.text)
        }
    }

    fn on_silence(&mut self, call: &mut Call, _silence_ms: u32) -> Result {
        if self.assistant.is_some() {
            self.llm_silence(call)
        } else {
            self.ask(call)
        }
    }

    fn on_barge_in(&mut self, _call: &mut Call, interruption: &Interruption) -> Result {
        self.llm_barge_in(interruption);
        Ok(())
    }

    fn on_generation(&mut self, call: &mut Call, result: &GenerationResult) -> Result {
        self.llm_generation(call, result)
    }

    fn on_call_ended(&mut self, call: &mut Call, _reason: EndReason) -> Result {
        self.set_booking_summary(call);
        Ok(())
    }
}

export_plugin!(Clinic);

#[cfg(test)]
mod tests;

#[cfg(test)]
mod llm_tests;
