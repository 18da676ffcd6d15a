//! LLM mode: the receptionist's side of the conversation comes from the tenant's language model.
//!
//! Used when the tenant has an LLM (`ctx.llm_available`) and its plugin configuration does not
//! say `"use_llm": false`. The greeting stays the plugin's own (no model round trip); then every
//! final caller turn is appended to the conversation and answered with a spoken, interruptible
//! generation. The model books with the `book_appointment` tool (submitted as the same
//! `appointment` extraction as the rule-based flow, plus `symptoms` for the reason) and ends the
//! call with `end_call`.
//!
//! - Urgent symptoms get the emergency advice at once, before the model answers.
//! - A barge-in keeps only what the caller heard of the cut reply in the conversation.
//! - A failed generation (or a refused request) switches the call to the rule-based flow, after
//!   a short apology; so does a key press (the keypad flow).
//!
//! Plugin configuration read here: `clinic_name`, `use_llm` (default true) and
//! `utc_offset_minutes` (the clinic's time zone, default 0 = UTC; it decides what "today" is).

use vaani_plugin_sdk::*;

use crate::parse::{self, ClockTime, Day};
use crate::symptoms::{self, EMERGENCY_ADVICE};
use crate::words;
use crate::{
    APPOINTMENT_SCHEMA, Appointment, Clinic, Field, LAST_APPOINTMENT, MENU_PROMPT, OPENS, Step,
    when,
};

/// Said when the model fails and the rule-based questions take over.
pub const APOLOGY: &str = "Sorry, I'm having a little trouble. Let's go step by step.";
/// Name of the booking tool.
pub const BOOK_TOOL: &str = "book_appointment";
/// Name of the hang-up tool.
pub const END_TOOL: &str = "end_call";
/// Furthest day ahead that can be booked (today + 6: the coming week).
pub const BOOKING_DAYS_AHEAD: i64 = 6;
/// Said when the caller stays silent after the booking.
const SILENT_GOODBYE: &str = "Thank you for calling. Goodbye.";
/// Conversation bytes above which the oldest turns are dropped (the host takes 64 KiB).
const HISTORY_BUDGET: usize = 40 * 1024;
/// Longest summary of an earlier call quoted in the prompt, in characters.
const PAST_SUMMARY_CHARS: usize = 300;

const WEEKDAY_NAMES: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const WEEKDAYS: [Day; 7] = [
    Day::Sunday,
    Day::Monday,
    Day::Tuesday,
    Day::Wednesday,
    Day::Thursday,
    Day::Friday,
    Day::Saturday,
];

/// Whether this call talks through the LLM: the tenant has one and did not switch it off.
pub fn enabled(ctx: &CallerContext) -> bool {
    ctx.llm_available && ctx.config().get("use_llm").and_then(Value::as_bool) != Some(false)
}

/// A calendar date, as days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date(pub i64);

impl Date {
    /// Parses `YYYY-MM-DD` (a real calendar date).
    pub fn parse(text: &str) -> Option<Date> {
        let mut parts = text.trim().splitn(3, '-');
        let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
        if y.len() != 4 || m.len() != 2 || d.len() != 2 {
            return None;
        }
        let (y, m, d): (i64, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
        if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
            return None;
        }
        let date = Date(days_from_civil(y, m, d));
        (date.civil() == (y, m, d)).then_some(date)
    }

    /// (year, month, day).
    pub fn civil(self) -> (i64, u32, u32) {
        civil_from_days(self.0)
    }

    /// 0 = Sunday … 6 = Saturday.
    pub fn weekday(self) -> usize {
        (self.0 + 4).rem_euclid(7) as usize
    }

    /// "Tuesday".
    pub fn weekday_name(self) -> &'static str {
        WEEKDAY_NAMES[self.weekday()]
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (y, m, d) = self.civil();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

/// Howard Hinnant's `days_from_civil`.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The clinic's local date and minute of the day at `unix_ms`.
pub fn local_now(unix_ms: u64, utc_offset_minutes: i64) -> (Date, u32) {
    let local = i64::try_from(unix_ms).unwrap_or(i64::MAX / 2) + utc_offset_minutes * 60_000;
    let date = Date(local.div_euclid(86_400_000));
    let minute = (local.rem_euclid(86_400_000) / 60_000) as u32;
    (date, minute)
}

/// The `utc_offset_minutes` setting (±14 h), default 0.
fn utc_offset_minutes(ctx: &CallerContext) -> i64 {
    ctx.config()
        .get("utc_offset_minutes")
        .and_then(Value::as_i64)
        .filter(|m| m.abs() <= 14 * 60)
        .unwrap_or(0)
}

/// The rule-based `Day` for a date `today + offset`, within the booking window.
fn day_for(date: Date, today: Date) -> Option<Day> {
    match date.0 - today.0 {
        0 => Some(Day::Today),
        1 => Some(Day::Tomorrow),
        2 => Some(Day::DayAfterTomorrow),
        3..=BOOKING_DAYS_AHEAD => Some(WEEKDAYS[date.weekday()]),
        _ => None,
    }
}

/// Parses "10:00", "9:30" or "10:00:00" (24-hour).
fn parse_time(text: &str) -> Option<ClockTime> {
    let mut parts = text.trim().split(':');
    let (h, m) = (parts.next()?, parts.next()?);
    if parts.next().is_some_and(|s| s.parse::<u32>().is_err()) || parts.next().is_some() {
        return None;
    }
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    ClockTime::new(h.parse().ok()?, m.parse().ok()?)
}

/// The tools offered to the model.
pub fn tools() -> Vec<Tool> {
    LlmRequest::new()
        .tool(
            BOOK_TOOL,
            "Book the clinic appointment. Call it only after the caller confirmed the booking \
             you read back to them.",
            json!({
                "type": "object",
                "properties": {
                    "patient_name": {
                        "type": "string",
                        "description": "The patient's full name."
                    },
                    "date": {
                        "type": "string",
                        "description": "Day of the appointment as YYYY-MM-DD."
                    },
                    "time": {
                        "type": "string",
                        "description": "Start time as 24-hour HH:MM, from 08:00 to 19:59."
                    },
                    "reason": {
                        "type": "string",
                        "description": "The reason for the visit, in the caller's words."
                    }
                },
                "required": ["patient_name", "date", "time", "reason"],
                "additionalProperties": false
            }),
        )
        .tool(
            END_TOOL,
            "End the phone call, after you said goodbye.",
            json!({ "type": "object", "properties": {}, "additionalProperties": false }),
        )
        .tools
}

/// The system prompt for this call.
pub fn system_prompt(
    clinic: &str,
    ctx: &CallerContext,
    caller_name: Option<&str>,
    today: Date,
) -> String {
    let mut week = Vec::new();
    for offset in 0..=BOOKING_DAYS_AHEAD {
        let date = Date(today.0 + offset);
        let label = match offset {
            0 => "today ",
            1 => "tomorrow ",
            _ => "",
        };
        week.push(format!("{label}{} {date}", date.weekday_name()));
    }
    let mut prompt = format!(
        "You are the receptionist of {clinic}, answering the phone. You book appointments.\n\
         Today is {weekday}, {today}. The next days are: {week}. Appointments can be booked \
         from today up to {BOOKING_DAYS_AHEAD} days ahead, between 08:00 and 20:00.\n\
         To book, you need the patient's name, the day, the time and the reason for the visit. \
         Ask for what is missing, one question at a time, and do not ask again for what the \
         caller already said. Then read the booking back and ask the caller to confirm it. Only \
         after they confirm, call {BOOK_TOOL} with the date as YYYY-MM-DD and the time as 24-hour \
         HH:MM. When it is booked, tell the caller, say goodbye and call {END_TOOL}. If the caller \
         wants to end the call, say goodbye and call {END_TOOL}.\n\
         This is a phone call and your words are spoken aloud: answer in one or two short \
         sentences of plain speech, without lists, symbols, markdown or emoji.\n\
         Do not give medical advice. If the caller describes an emergency, they have already \
         been told to hang up and call 112; do not repeat it, offer to continue with a booking.",
        weekday = today.weekday_name(),
        week = week.join(", "),
    );
    match caller_name {
        Some(name) => prompt.push_str(&format!(
            "\nThe caller is {name}, known from earlier calls; they were greeted by name. The \
             patient may be someone else."
        )),
        None if ctx.previous_calls > 0 => prompt.push_str(&format!(
            "\nThe caller has called {} time(s) before.",
            ctx.previous_calls
        )),
        None => {}
    }
    let past: Vec<String> = ctx.recent_calls.iter().filter_map(past_call_line).collect();
    if !past.is_empty() {
        prompt.push_str("\nTheir recent calls, newest first:");
        for line in past {
            prompt.push_str("\n- ");
            prompt.push_str(&line);
        }
    }
    prompt
}

/// One earlier call, for the prompt: its date, summary and bookings.
fn past_call_line(past: &PastCall) -> Option<String> {
    let (date, _) = local_now(past.started_at_unix_ms, 0);
    let mut parts = Vec::new();
    if let Some(summary) = past.summary.as_deref().map(str::trim)
        && !summary.is_empty()
    {
        parts.push(summary.chars().take(PAST_SUMMARY_CHARS).collect::<String>());
    }
    for extraction in &past.extractions {
        if extraction.schema_id != APPOINTMENT_SCHEMA {
            continue;
        }
        let data = extraction.data();
        let field = |key: &str| data.get(key).and_then(Value::as_str).map(str::to_string);
        let mut booked = String::from("booked an appointment");
        if let Some(name) = field("patient_name") {
            booked.push_str(&format!(" for {name}"));
        }
        match (field("date"), field("day")) {
            (Some(date), _) => booked.push_str(&format!(" on {date}")),
            (None, Some(day)) => {
                booked.push_str(&format!(" ({} as of that call)", day.replace('_', " ")))
            }
            _ => {}
        }
        if let Some(time) = field("time") {
            booked.push_str(&format!(" at {time}"));
        }
        if let Some(reason) = field("reason") {
            booked.push_str(&format!(", reason: {reason}"));
        }
        parts.push(booked);
    }
    (!parts.is_empty()).then(|| format!("{date}: {}", parts.join("; ")))
}

/// A generation in flight.
#[derive(Debug, Clone)]
struct Pending {
    id: GenerationId,
    playback: Option<PlaybackId>,
    /// The caller barged in over it; `heard` is what they heard.
    interrupted: bool,
    heard: Option<String>,
}

/// The LLM conversation of one call.
#[derive(Debug)]
pub struct Assistant {
    /// System prompt first, then the conversation.
    messages: Vec<Message>,
    tools: Vec<Tool>,
    pending: Option<Pending>,
    /// Playbacks of finished spoken replies and the index of their message.
    spoken: Vec<(PlaybackId, usize)>,
    /// The caller's latest words not answered yet by a completed reply, and whether they
    /// were urgent (the advice was given).
    unanswered: Option<(String, bool)>,
    today: Date,
    now_minute: u32,
    /// `end_call` or a goodbye: the call is ending.
    ending: bool,
}

impl Assistant {
    /// The conversation for a call with this context, after the plugin's own greeting.
    pub fn new(
        ctx: &CallerContext,
        clinic: &str,
        caller_name: Option<&str>,
        greeting: &str,
    ) -> Self {
        let (today, now_minute) = local_now(ctx.started_at_unix_ms, utc_offset_minutes(ctx));
        Assistant {
            messages: vec![
                Message::new(Role::System, system_prompt(clinic, ctx, caller_name, today)),
                Message::new(Role::Assistant, greeting),
            ],
            tools: tools(),
            pending: None,
            spoken: Vec::new(),
            unanswered: None,
            today,
            now_minute,
            ending: false,
        }
    }

    /// The conversation so far.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// Records what the caller heard of a cut reply.
    fn keep_heard(&mut self, pending: Pending) {
        if let Some(heard) = pending.heard.map(|h| h.trim().to_string())
            && !heard.is_empty()
        {
            self.messages.push(Message::new(Role::Assistant, heard));
        }
    }

    /// Appends the caller's words (to the previous caller message if nothing answered it).
    fn push_user(&mut self, text: &str) {
        let text = text.trim();
        match self.messages.last_mut() {
            Some(last) if last.role == Role::User => {
                last.content.push(' ');
                last.content.push_str(text);
            }
            _ => self.messages.push(Message::new(Role::User, text)),
        }
    }

    /// Drops the oldest turns (whole turns, from a caller message on) while the conversation
    /// is over budget.
    fn trim(&mut self) {
        let size = |m: &[Message]| -> usize {
            m.iter()
                .map(|m| {
                    m.content.len()
                        + m.tool_calls
                            .iter()
                            .map(|c| c.arguments_json.len() + c.name.len() + c.id.len())
                            .sum::<usize>()
                })
                .sum()
        };
        while size(&self.messages) > HISTORY_BUDGET {
            // The second caller message starts the turn that becomes the oldest one kept.
            let Some(cut) = self
                .messages
                .iter()
                .enumerate()
                .skip(1)
                .filter(|(_, m)| m.role == Role::User)
                .nth(1)
                .map(|(i, _)| i)
            else {
                return;
            };
            self.messages.drain(1..cut);
            self.spoken.retain(|(_, i)| *i >= cut);
            for (_, i) in &mut self.spoken {
                *i -= cut - 1;
            }
        }
    }

    fn request(&self) -> LlmRequest {
        LlmRequest {
            messages: self.messages.clone(),
            tools: self.tools.clone(),
            ..LlmRequest::new()
        }
        .speak(true)
        .interruptible(true)
    }

    /// The latest non-empty reply, to repeat after a silence.
    fn last_reply(&self) -> Option<&str> {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == Role::Assistant && !m.content.trim().is_empty())
            .map(|m| m.content.as_str())
    }
}

/// A goodbye in the model's reply ("Goodbye.", "Bye now").
fn says_goodbye(text: &str) -> bool {
    let norms: Vec<String> = words::words(text).into_iter().map(|w| w.norm).collect();
    norms
        .iter()
        .any(|w| w == "goodbye" || w == "bye" || w == "byebye")
        || norms.windows(2).any(|w| w[0] == "good" && w[1] == "bye")
}

/// A tool result for the model.
fn tool_error(message: impl Into<String>) -> Value {
    json!({ "ok": false, "error": message.into() })
}

impl Clinic {
    /// Starts LLM mode (after the greeting was said).
    pub(crate) fn start_assistant(&mut self, ctx: &CallerContext, clinic: &str, greeting: &str) {
        self.assistant = Some(Assistant::new(
            ctx,
            clinic,
            self.caller_name.as_deref(),
            greeting,
        ));
    }

    /// A final caller turn in LLM mode.
    pub(crate) fn llm_speech(&mut self, call: &mut Call, text: &str) -> Result {
        let words = words::words(text);
        if words.is_empty() || self.step == Step::Done {
            return Ok(());
        }
        let Some(assistant) = self.assistant.as_mut() else {
            return self.on_speech(call, text);
        };
        if assistant.ending {
            return Ok(());
        }
        if let Some(pending) = assistant.pending.take() {
            // The caller spoke before (or over) the reply: answer the newer words instead.
            call.cancel_generation(pending.id);
            assistant.keep_heard(pending);
        }
        assistant.push_user(text);
        let (keywords, urgent) = symptoms::assess(&words);
        assistant.unanswered = Some((text.trim().to_string(), urgent));
        if urgent {
            assistant
                .messages
                .push(Message::new(Role::Assistant, EMERGENCY_ADVICE));
            self.urgent = true;
            call.say_with(
                EMERGENCY_ADVICE,
                SayOptions {
                    interruptible: false,
                    ..SayOptions::default()
                },
            )?;
            let reason = parse::reason(&words).unwrap_or_else(|| text.trim().to_string());
            self.submit_symptoms(call, reason, keywords)?;
        }
        self.llm_generate(call)
    }

    /// Asks the model for the next reply, spoken as it streams.
    fn llm_generate(&mut self, call: &mut Call) -> Result {
        let Some(assistant) = self.assistant.as_mut() else {
            return Ok(());
        };
        assistant.trim();
        match call.generate(&assistant.request()) {
            Ok(handle) => {
                assistant.pending = Some(Pending {
                    id: handle.id,
                    playback: handle.playback,
                    interrupted: false,
                    heard: None,
                });
                Ok(())
            }
            Err(error) => {
                call.log(LogLevel::Warn, format!("LLM request refused: {error}"));
                self.fall_back(call)
            }
        }
    }

    /// A generation finished.
    pub(crate) fn llm_generation(&mut self, call: &mut Call, result: &GenerationResult) -> Result {
        let Some(assistant) = self.assistant.as_mut() else {
            return Ok(());
        };
        if assistant.pending.as_ref().map(|p| p.id) != Some(result.id) {
            // Superseded by newer caller words, or cancelled by the plugin.
            return Ok(());
        }
        let Some(pending) = assistant.pending.take() else {
            return Ok(());
        };
        match &result.outcome {
            GenerationOutcome::Completed(generation) => {
                assistant.unanswered = None;
                let text = if pending.interrupted {
                    pending.heard.clone().unwrap_or_default()
                } else {
                    generation.text.trim().to_string()
                };
                let index = assistant.messages.len();
                assistant.messages.push(Message {
                    tool_calls: generation.tool_calls.clone(),
                    ..Message::new(Role::Assistant, text)
                });
                if let Some(playback) = pending.playback
                    && !pending.interrupted
                {
                    assistant.spoken.push((playback, index));
                }
                if !generation.tool_calls.is_empty() {
                    return self.run_tools(call, &generation.tool_calls, &generation.text);
                }
                if self.booked.is_some() && says_goodbye(&generation.text) {
                    assistant.ending = true;
                    call.hangup();
                }
                Ok(())
            }
            GenerationOutcome::Cancelled => {
                assistant.keep_heard(pending);
                Ok(())
            }
            GenerationOutcome::Failed(message) => {
                call.log(LogLevel::Warn, format!("LLM generation failed: {message}"));
                self.fall_back(call)
            }
        }
    }

    /// Runs the model's tool calls, answers each, and continues the conversation.
    fn run_tools(&mut self, call: &mut Call, calls: &[ToolCall], text: &str) -> Result {
        let mut end = false;
        let mut follow_up = false;
        let mut results = Vec::new();
        for tool_call in calls {
            let result = match tool_call.name.as_str() {
                BOOK_TOOL => {
                    let result = self.book_with_tool(call, &tool_call.arguments())?;
                    follow_up = true;
                    result
                }
                END_TOOL => {
                    end = true;
                    json!({ "ok": true })
                }
                other => {
                    follow_up = true;
                    tool_error(format!("there is no tool called {other:?}"))
                }
            };
            results.push((tool_call.id.clone(), result));
        }
        let failed = results.iter().any(|(_, r)| r["ok"] == false);
        let Some(assistant) = self.assistant.as_mut() else {
            return Ok(());
        };
        for (id, result) in results {
            assistant.messages.push(Message {
                tool_call_id: Some(id),
                ..Message::new(Role::Tool, result.to_string())
            });
        }
        if end && !failed {
            assistant.ending = true;
            if text.trim().is_empty() {
                let goodbye = match &self.booked {
                    Some(booked) => format!(
                        "Your appointment is booked for {}. Goodbye.",
                        when(
                            booked.day,
                            ClockTime::from_hhmm(&booked.time).unwrap_or(OPENS)
                        )
                    ),
                    None => "Thank you for calling. Goodbye.".to_string(),
                };
                call.say(goodbye)?;
            }
            call.hangup();
            return Ok(());
        }
        if follow_up || end {
            return self.llm_generate(call);
        }
        Ok(())
    }

    /// `book_appointment`: checks the arguments, submits the booking and answers the model.
    fn book_with_tool(&mut self, call: &mut Call, args: &Value) -> Result<Value> {
        let Some(assistant) = self.assistant.as_ref() else {
            return Ok(tool_error("not available"));
        };
        let (today, now_minute) = (assistant.today, assistant.now_minute);
        if let Some(booked) = &self.booked {
            return Ok(tool_error(format!(
                "an appointment is already booked on this call ({} at {}); only one per call",
                booked.date.as_deref().unwrap_or(booked.day.spoken()),
                booked.time
            )));
        }
        let text = |key: &str| {
            args.get(key)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let Some(name) = text("patient_name").or_else(|| self.caller_name.clone()) else {
            return Ok(tool_error("patient_name is missing: ask the caller for it"));
        };
        let name: String = name.chars().take(200).collect();
        let Some(date) = text("date").as_deref().and_then(Date::parse) else {
            return Ok(tool_error("date must be a calendar date as YYYY-MM-DD"));
        };
        let Some(day) = day_for(date, today) else {
            return Ok(tool_error(format!(
                "{date} cannot be booked: only dates from {today} to {} can",
                Date(today.0 + BOOKING_DAYS_AHEAD)
            )));
        };
        let Some(time) = text("time").as_deref().and_then(parse_time) else {
            return Ok(tool_error("time must be 24-hour HH:MM"));
        };
        if time < OPENS || time > LAST_APPOINTMENT {
            return Ok(tool_error(
                "the clinic sees patients between 08:00 and 20:00: ask for another time",
            ));
        }
        if day == Day::Today && u32::from(time.hour) * 60 + u32::from(time.minute) <= now_minute {
            return Ok(tool_error(
                "that time today has already passed: ask for a later time",
            ));
        }
        let reason = text("reason").map(|r| r.chars().take(300).collect::<String>());
        let appointment = Appointment {
            day,
            slot: time.slot(),
            time: time.to_string(),
            caller: self.caller.clone(),
            patient_name: Some(name.clone()),
            reason: reason.clone(),
            date: Some(date.to_string()),
        };
        if let Err(error) = call.extract(APPOINTMENT_SCHEMA, &appointment) {
            call.log(LogLevel::Error, format!("booking refused: {error}"));
            return Ok(tool_error(
                "the booking system refused this booking; apologise and offer to try again",
            ));
        }
        if let Err(error) = call.set_memory(&json!({ "last_booking": appointment })) {
            call.log(
                LogLevel::Warn,
                format!("could not save the booking: {}", error.message()),
            );
        }
        // The booking stands: what follows only adds to it, so failures are logged.
        if let Err(error) = self.set_name(call, name.clone()) {
            call.log(
                LogLevel::Warn,
                format!("could not remember the name: {}", error.message()),
            );
        }
        if let Some(reason) = &reason {
            let (keywords, _) = symptoms::assess(&words::words(reason));
            if let Err(error) = self.submit_symptoms(call, reason.clone(), keywords) {
                call.log(
                    LogLevel::Warn,
                    format!("symptoms refused: {}", error.message()),
                );
            }
        }
        let spoken = when(day, time);
        self.booked = Some(appointment);
        self.set_booking_summary(call);
        Ok(json!({
            "ok": true,
            "booked": {
                "patient_name": name,
                "date": date.to_string(),
                "weekday": date.weekday_name(),
                "time": time.to_string(),
                "reason": reason,
                "spoken": spoken,
            }
        }))
    }

    /// The caller spoke over a playback: keep only what they heard of a model reply.
    pub(crate) fn llm_barge_in(&mut self, interruption: &Interruption) {
        let Some(assistant) = self.assistant.as_mut() else {
            return;
        };
        let heard = interruption
            .heard_text
            .as_deref()
            .map(str::trim)
            .unwrap_or_default()
            .to_string();
        if let Some(pending) = assistant
            .pending
            .as_mut()
            .filter(|p| p.playback == Some(interruption.playback))
        {
            pending.interrupted = true;
            pending.heard = Some(heard);
        } else if let Some(&(_, index)) = assistant
            .spoken
            .iter()
            .find(|(playback, _)| *playback == interruption.playback)
        {
            assistant.messages[index].content = heard;
        }
    }

    /// Silence in LLM mode: repeat the last reply, or say goodbye once booked.
    pub(crate) fn llm_silence(&mut self, call: &mut Call) -> Result {
        let Some(assistant) = self.assistant.as_mut() else {
            return Ok(());
        };
        if assistant.pending.is_some() || assistant.ending || self.step == Step::Done {
            return Ok(());
        }
        if self.booked.is_some() {
            assistant.ending = true;
            call.say(SILENT_GOODBYE)?;
            call.hangup();
            return Ok(());
        }
        if !assistant.messages.iter().any(|m| m.role == Role::User) {
            // Nothing said yet: the opening question again, as without the model.
            return self.ask(call);
        }
        let again = assistant.last_reply().unwrap_or(MENU_PROMPT).to_string();
        call.say(again)?;
        Ok(())
    }

    /// Leaves LLM mode for the rest of the call; the rule-based flow takes over.
    pub(crate) fn leave_llm(&mut self, call: &mut Call) -> Option<Assistant> {
        let assistant = self.assistant.take()?;
        if let Some(pending) = &assistant.pending {
            call.cancel_generation(pending.id);
        }
        Some(assistant)
    }

    /// The model failed: apologise and continue with the rule-based questions, starting from
    /// the caller's unanswered words.
    fn fall_back(&mut self, call: &mut Call) -> Result {
        let Some(assistant) = self.leave_llm(call) else {
            return Ok(());
        };
        call.say(APOLOGY)?;
        if let Some(booked) = self.booked.clone() {
            self.step = Step::Done;
            let time = ClockTime::from_hhmm(&booked.time).unwrap_or(OPENS);
            call.say(format!(
                "Your appointment is booked for {}. Goodbye.",
                when(booked.day, time)
            ))?;
            call.hangup();
            return Ok(());
        }
        self.step = Step::Menu;
        self.keypad = false;
        self.misses = 0;
        match assistant.unanswered {
            Some((text, false)) => self.on_speech(call, &text),
            Some((text, true)) => {
                // The advice was given; the booking questions start.
                let words = words::words(&text);
                if self.draft.reason.is_none() {
                    self.draft.reason = parse::reason(&words).or(Some(text));
                }
                if let Some(name) = self.caller_name.clone() {
                    self.draft.name = Some(name);
                }
                self.advance(call)
            }
            None => {
                if self.draft.name.is_none() {
                    self.draft.name = self.caller_name.clone();
                }
                self.step = Step::Ask(Field::Name);
                self.advance(call)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_know_their_weekday() {
        let date = Date::parse("2025-03-11").unwrap();
        assert_eq!(date.to_string(), "2025-03-11");
        assert_eq!(date.weekday_name(), "Tuesday");
        assert_eq!(Date(0).to_string(), "1970-01-01");
        assert_eq!(Date(0).weekday_name(), "Thursday");
        assert_eq!(Date::parse("2024-02-29").unwrap().to_string(), "2024-02-29");
        assert_eq!(Date::parse("2025-02-29"), None);
        assert_eq!(Date::parse("2025-3-11"), None);
        assert_eq!(Date::parse("tomorrow"), None);
        assert_eq!(
            Date(Date::parse("2024-12-31").unwrap().0 + 1).to_string(),
            "2025-01-01"
        );
    }

    #[test]
    fn local_time_follows_the_offset() {
        // 2025-03-10 20:00 UTC is already 2025-03-11 01:30 in India.
        let ms = 1_741_636_800_000;
        assert_eq!(
            local_now(ms, 0),
            (Date::parse("2025-03-10").unwrap(), 20 * 60)
        );
        assert_eq!(local_now(ms, 330), (Date::parse("2025-03-11").unwrap(), 90));
    }

    #[test]
    fn booking_window_maps_to_days() {
        let today = Date::parse("2025-03-10").unwrap(); // a Monday
        let day = |d: &str| day_for(Date::parse(d).unwrap(), today);
        assert_eq!(day("2025-03-10"), Some(Day::Today));
        assert_eq!(day("2025-03-11"), Some(Day::Tomorrow));
        assert_eq!(day("2025-03-12"), Some(Day::DayAfterTomorrow));
        assert_eq!(day("2025-03-13"), Some(Day::Thursday));
        assert_eq!(day("2025-03-16"), Some(Day::Sunday));
        assert_eq!(day("2025-03-17"), None);
        assert_eq!(day("2025-03-09"), None);
    }

    #[test]
    fn times_parse_leniently() {
        assert_eq!(parse_time("10:00"), ClockTime::new(10, 0));
        assert_eq!(parse_time("9:30"), ClockTime::new(9, 30));
        assert_eq!(parse_time("14:15:00"), ClockTime::new(14, 15));
        assert_eq!(parse_time("25:00"), None);
        assert_eq!(parse_time("10"), None);
        assert_eq!(parse_time("10:0"), None);
    }

    #[test]
    fn goodbyes_are_recognised() {
        assert!(says_goodbye("You're booked for tomorrow at ten. Goodbye."));
        assert!(says_goodbye("Thanks, bye!"));
        assert!(says_goodbye("Good bye now."));
        assert!(!says_goodbye("Which day would you like?"));
    }
}
