//! The job's structured result, stored in `/output/result.json`.

use std::process::ExitCode;

use serde::Serialize;
use serde_json::{Value, json};

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

fn ok_result(value: Value) -> Value {
    json!({ "ok": true, "value": value })
}

fn err_result(message: &str) -> Value {
    json!({ "ok": false, "error": message })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_shape() {
        let value = serde_json::to_value(vec![("a", 1)]).unwrap();
        assert_eq!(
            serde_json::to_string(&ok_result(value)).unwrap(),
            r#"{"ok":true,"value":[["a",1]]}"#
        );
    }

    #[test]
    fn error_shape() {
        let error = crate::Error::MissingInput { name: "x".into() };
        assert_eq!(
            err_result(&error.to_string()),
            json!({
                "ok": false,
                "error": "input `x` not found in /input; pass it with `netmind run --input DIR`",
            })
        );
    }
}
