//! The job's structured result, stored in `/output/result.json`.

use std::process::ExitCode;

use serde::Serialize;
use serde_json::Value;

use crate::{Result, write_output_json};

/// The name, relative to [`OUTPUT_DIR`](crate::OUTPUT_DIR), of the file where [`run`] stores the result.
///
/// It holds `{"ok": true, "value": ...}` after success and `{"ok": false, "error": "..."}` after failure.
pub const RESULT_FILE: &str = "result.json";

/// Runs the job and records its outcome; use it as the whole body of `main`.
///
/// - On `Ok(value)` it writes `{"ok": true, "value": value}` to `/output/result.json` and returns
///   [`ExitCode::SUCCESS`].
/// - On `Err(e)` it prints `error: <e>` to stderr, writes `{"ok": false, "error": "<e>"}` to
///   `/output/result.json` and returns exit code 1.
///
/// ```no_run
/// use std::process::ExitCode;
///
/// fn main() -> ExitCode {
///     netmind_sdk::run(|| Ok(netmind_sdk::inputs()?.len()))
/// }
/// ```
pub fn run<T: Serialize>(job: impl FnOnce() -> Result<T>) -> ExitCode {
    let outcome = job().and_then(|value| Ok(serde_json::to_value(value)?));
    let written = match outcome {
        Ok(value) => write_output_json(RESULT_FILE, &ok_result(value)),
        Err(error) => return fail(&error.to_string()),
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&format!("could not write the result: {error}")),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    if let Err(error) = write_output_json(RESULT_FILE, &err_result(message)) {
        eprintln!("error: could not write the result: {error}");
    }
    ExitCode::from(1)
}

/// The contents of `result.json`; a struct rather than a map so `ok` comes first.
#[derive(Serialize)]
struct Outcome<'a> {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

fn ok_result(value: Value) -> Outcome<'static> {
    Outcome {
        ok: true,
        value: Some(value),
        error: None,
    }
}

fn err_result(message: &str) -> Outcome<'_> {
    Outcome {
        ok: false,
        value: None,
        error: Some(message),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ok_shape() {
        let value = serde_json::to_value(vec![("a", 1)]).unwrap();
        assert_eq!(
            serde_json::to_string(&ok_result(value)).unwrap(),
            r#"{"ok":true,"value":[["a",1]]}"#
        );
        assert_eq!(
            serde_json::to_string(&ok_result(Value::Null)).unwrap(),
            r#"{"ok":true,"value":null}"#
        );
    }

    #[test]
    fn error_shape() {
        let error = crate::Error::MissingInput { name: "x".into() };
        let message = error.to_string();
        let text = serde_json::to_string(&err_result(&message)).unwrap();
        assert!(text.starts_with(r#"{"ok":false,"error":"#), "{text}");
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            json!({
                "ok": false,
                "error": "input `x` not found in /input; pass it with `netmind run --input DIR`",
            })
        );
    }
}
