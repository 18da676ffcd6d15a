//! The clinic receptionist: books an appointment with a DTMF menu.
//!
//! Flow: greeting (by name for known callers, with their last booking for returning ones; the
//! clinic's name comes from the tenant's `clinic_name` setting) → "Press 1 to book" → day
//! (1 today, 2 tomorrow, 3 the day after tomorrow) → slot (1 morning 10:00,
//! 2 afternoon 14:00, 3 evening 18:00) → confirm with 1 (2 starts over) →
//! `appointment` extraction, caller memory `{ "last_booking": … }`, goodbye and
//! hang up. Wrong keys and silence repeat the current question.

use serde::Serialize;
use vaani_plugin_sdk::*;

/// Id of the extraction schema this plugin submits bookings against.
pub const APPOINTMENT_SCHEMA: &str = "appointment";

const MENU_PROMPT: &str = "Press 1 to book an appointment.";
const DAY_PROMPT: &str =
    "Which day would you like? Press 1 for today, 2 for tomorrow, or 3 for the day after tomorrow.";
const SLOT_PROMPT: &str = "Which time suits you? Press 1 for morning at 10:00, 2 for afternoon at 14:00, or 3 for evening at 18:00.";
const INVALID_KEY: &str = "Sorry, that is not one of the options.";

/// A bookable day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Day {
    /// Key 1.
    Today,
    /// Key 2.
    Tomorrow,
    /// Key 3.
    DayAfterTomorrow,
}

impl Day {
    fn from_key(key: char) -> Option<Day> {
        match key {
            '1' => Some(Day::Today),
            '2' => Some(Day::Tomorrow),
            '3' => Some(Day::DayAfterTomorrow),
            _ => None,
        }
    }

    fn spoken(self) -> &'static str {
        match self {
            Day::Today => "today",
            Day::Tomorrow => "tomorrow",
            Day::DayAfterTomorrow => "the day after tomorrow",
        }
    }
}

/// A bookable time slot.
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
    fn from_key(key: char) -> Option<Slot> {
        match key {
            '1' => Some(Slot::Morning),
            '2' => Some(Slot::Afternoon),
            '3' => Some(Slot::Evening),
            _ => None,
        }
    }

    fn time(self) -> &'static str {
        match self {
            Slot::Morning => "10:00",
            Slot::Afternoon => "14:00",
            Slot::Evening => "18:00",
        }
    }

    fn spoken(self) -> &'static str {
        match self {
            Slot::Morning => "morning",
            Slot::Afternoon => "afternoon",
            Slot::Evening => "evening",
        }
    }
}

/// The booking submitted as the `appointment` extraction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Appointment {
    /// Chosen day.
    pub day: Day,
    /// Chosen slot.
    pub slot: Slot,
    /// Slot start, "HH:MM".
    pub time: &'static str,
    /// Caller number.
    pub caller: String,
    /// Patient name, when the caller is known by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient_name: Option<String>,
}

impl Appointment {
    fn spoken(&self) -> String {
        format!(
            "{} {} at {}",
            self.day.spoken(),
            self.slot.spoken(),
            self.time
        )
    }
}

/// Where the caller is in the menu.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Step {
    #[default]
    Menu,
    Day,
    Slot(Day),
    Confirm(Day, Slot),
    Done,
}

/// Clinic name used when the tenant configures none.
pub const DEFAULT_CLINIC_NAME: &str = "our clinic";

/// The clinic plugin.
#[derive(Default)]
pub struct Clinic {
    step: Step,
    caller: String,
    caller_name: Option<String>,
}

/// The `clinic_name` setting from the tenant's plugin configuration.
fn clinic_name(ctx: &CallerContext) -> String {
    serde_json::from_str::<serde_json::Value>(&ctx.config_json)
        .ok()
        .and_then(|config| config["clinic_name"].as_str().map(str::trim).map(str::to_string))
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| DEFAULT_CLINIC_NAME.to_string())
}

/// "tomorrow morning at 10:00" for the booking a previous call saved in memory.
fn last_booking(ctx: &CallerContext) -> Option<String> {
    let memory = ctx.memory()?;
    let booking = memory.get("last_booking")?;
    let day = match booking.get("day")?.as_str()? {
        "today" => Day::Today,
        "tomorrow" => Day::Tomorrow,
        "day_after_tomorrow" => Day::DayAfterTomorrow,
        _ => return None,
    };
    let slot = match booking.get("slot")?.as_str()? {
        "morning" => Slot::Morning,
        "afternoon" => Slot::Afternoon,
        "evening" => Slot::Evening,
        _ => return None,
    };
    Some(format!("{} {} at {}", day.spoken(), slot.spoken(), slot.time()))
}

impl Clinic {
    fn prompt(&self) -> String {
        match self.step {
            Step::Menu => MENU_PROMPT.to_string(),
            Step::Day => DAY_PROMPT.to_string(),
            Step::Slot(_) => SLOT_PROMPT.to_string(),
            Step::Confirm(day, slot) => format!(
                "You chose {} {} at {}. Press 1 to confirm, or 2 to start again.",
                day.spoken(),
                slot.spoken(),
                slot.time()
            ),
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

    fn reprompt(&self, call: &mut Call) -> Result {
        call.say(INVALID_KEY)?;
        self.ask(call)
    }

    fn book(&mut self, call: &mut Call, day: Day, slot: Slot) -> Result {
        let appointment = Appointment {
            day,
            slot,
            time: slot.time(),
            caller: self.caller.clone(),
            patient_name: self.caller_name.clone(),
        };
        call.extract(APPOINTMENT_SCHEMA, &appointment)?;
        call.set_memory(&json!({ "last_booking": appointment }))?;
        self.step = Step::Done;
        call.say(format!(
            "Your appointment is booked for {}. Goodbye.",
            appointment.spoken()
        ))?;
        call.hangup();
        Ok(())
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
        vec![schema(
            APPOINTMENT_SCHEMA,
            "An appointment booked by phone",
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "required": ["day", "slot", "time", "caller"],
                "additionalProperties": false,
                "properties": {
                    "day": { "enum": ["today", "tomorrow", "day_after_tomorrow"] },
                    "slot": { "enum": ["morning", "afternoon", "evening"] },
                    "time": { "type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$" },
                    "caller": { "type": "string", "minLength": 1 },
                    "patient_name": { "type": "string", "minLength": 1 }
                }
            }),
        )]
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
        call.say(greeting)?;
        self.ask(call)
    }

    fn on_dtmf(&mut self, call: &mut Call, digit: char) -> Result {
        match (self.step, digit) {
            (Step::Done, _) => Ok(()),
            (Step::Menu, '1') => {
                self.step = Step::Day;
                self.ask(call)
            }
            (Step::Day, key) => match Day::from_key(key) {
                Some(day) => {
                    self.step = Step::Slot(day);
                    self.ask(call)
                }
                None => self.reprompt(call),
            },
            (Step::Slot(day), key) => match Slot::from_key(key) {
                Some(slot) => {
                    self.step = Step::Confirm(day, slot);
                    self.ask(call)
                }
                None => self.reprompt(call),
            },
            (Step::Confirm(day, slot), '1') => self.book(call, day, slot),
            (Step::Confirm(..), '2') => {
                self.step = Step::Day;
                self.ask(call)
            }
            _ => self.reprompt(call),
        }
    }

    fn on_silence(&mut self, call: &mut Call, _silence_ms: u32) -> Result {
        self.ask(call)
    }
}

export_plugin!(Clinic);

#[cfg(test)]
mod tests {
    use super::*;
    use vaani_plugin_sdk::testing::TestCall;

    fn known_caller() -> CallerContext {
        CallerContext {
            caller_name: Some("Asha".into()),
            ..TestCall::<Clinic>::default_context()
        }
    }

    #[test]
    fn greets_known_callers_by_name() {
        let mut call = TestCall::<Clinic>::new();
        call.start_with(known_caller()).unwrap();
        assert_eq!(call.said(), vec!["Welcome back to our clinic, Asha.", MENU_PROMPT]);

        let mut anonymous = TestCall::<Clinic>::new();
        anonymous.start().unwrap();
        assert_eq!(anonymous.said()[0], "Welcome to our clinic.");
    }

    #[test]
    fn uses_the_configured_name_and_remembers_the_last_booking() {
        let mut call = TestCall::<Clinic>::new();
        call.start_with(CallerContext {
            config_json: r#"{"clinic_name": "Sunny Clinic"}"#.into(),
            memory_json: Some(
                r#"{"last_booking": {"day": "tomorrow", "slot": "morning", "time": "10:00"}}"#
                    .into(),
            ),
            previous_calls: 1,
            ..TestCall::<Clinic>::default_context()
        })
        .unwrap();
        assert_eq!(
            call.said()[0],
            "Welcome back to Sunny Clinic. Your last booking was for tomorrow morning at 10:00."
        );
    }

    #[test]
    fn ignores_memory_it_does_not_understand() {
        let mut call = TestCall::<Clinic>::new();
        call.start_with(CallerContext {
            memory_json: Some(r#"{"last_booking": {"day": "someday"}}"#.into()),
            ..TestCall::<Clinic>::default_context()
        })
        .unwrap();
        assert_eq!(call.said()[0], "Welcome to our clinic.");
    }

    #[test]
    fn books_tomorrow_afternoon() {
        let mut call = TestCall::<Clinic>::new();
        call.start_with(known_caller()).unwrap();
        call.dtmf_keys("122").unwrap();
        assert!(
            call.last_said()
                .unwrap()
                .starts_with("You chose tomorrow afternoon at 14:00")
        );
        assert!(!call.hung_up());
        call.dtmf('1').unwrap();
        let expected = json!({
            "day": "tomorrow", "slot": "afternoon", "time": "14:00",
            "caller": "+919800000001", "patient_name": "Asha"
        });
        assert_eq!(
            call.extractions(),
            vec![(APPOINTMENT_SCHEMA.to_string(), expected.clone())]
        );
        assert_eq!(call.memory(), Some(json!({ "last_booking": expected })));
        assert_eq!(
            call.last_said().as_deref(),
            Some("Your appointment is booked for tomorrow afternoon at 14:00. Goodbye.")
        );
        assert!(call.hung_up());
    }

    #[test]
    fn invalid_keys_reprompt_without_advancing() {
        let mut call = TestCall::<Clinic>::new();
        call.start().unwrap();
        call.dtmf('9').unwrap();
        assert_eq!(call.said()[2..], [INVALID_KEY, MENU_PROMPT]);
        call.dtmf('1').unwrap();
        call.dtmf('7').unwrap();
        assert_eq!(call.last_said().as_deref(), Some(DAY_PROMPT));
        call.dtmf('3').unwrap();
        call.dtmf('#').unwrap();
        assert_eq!(call.last_said().as_deref(), Some(SLOT_PROMPT));
        call.dtmf('3').unwrap();
        call.dtmf('2').unwrap(); // start over
        assert_eq!(call.last_said().as_deref(), Some(DAY_PROMPT));
        call.dtmf_keys("3").unwrap();
        call.dtmf_keys("31").unwrap();
        let (_, booking) = &call.extractions()[0];
        assert_eq!(booking["day"], "day_after_tomorrow");
        assert_eq!(booking["slot"], "evening");
        assert_eq!(booking["time"], "18:00");
        assert!(booking.get("patient_name").is_none());
    }

    #[test]
    fn silence_repeats_the_question_and_done_ignores_keys() {
        let mut call = TestCall::<Clinic>::new();
        call.start().unwrap();
        call.silence(5000).unwrap();
        assert_eq!(call.last_said().as_deref(), Some(MENU_PROMPT));
        call.dtmf_keys("1111").unwrap();
        let before = call.actions().len();
        call.dtmf('1').unwrap();
        call.silence(5000).unwrap();
        assert_eq!(call.actions().len(), before);
    }
}
