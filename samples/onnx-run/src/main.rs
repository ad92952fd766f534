//! The onnx-run sample: runs an ONNX model on NumPy `.npy` inputs through wasi-nn.
//!
//! Loads `/input/model.onnx` (or `--model PATH`, relative to `/input`, or `--model-name NAME`, a model
//! the host registered), feeds it every `/input/*.npy` in sorted file-name order, each under its file stem
//! as the input name (`--positional`: as `"0"`, `"1"`, ... instead), and writes every output as
//! `/output/<name>.npy`. `--target gpu` asks for the host's accelerated backend.
//!
//! Run with: `netmind run samples/onnx-run --input DIR --output OUT`

use std::{path::Path, process::ExitCode, time::Instant};

use netmind_sdk::{
    Error, Result,
    nn::{Encoding, Graph, Target, Tensor, TensorType},
};
use serde::Serialize;

/// The usage line, shown with argument errors.
const USAGE: &str =
    "usage: onnx-run [--model PATH | --model-name NAME] [--positional] [--target cpu|gpu]";

/// The model file looked for in `/input` when neither `--model` nor `--model-name` is given.
const DEFAULT_MODEL: &str = "model.onnx";

/// Where the model comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ModelSource {
    /// A file: relative to `/input`, or absolute (e.g. under `/assets`).
    File(String),
    /// A model the host registered under this name.
    Name(String),
}

/// The parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Options {
    model: ModelSource,
    positional: bool,
    target: Target,
}

/// One input or output as the result records it.
#[derive(Debug, Serialize)]
struct TensorInfo {
    /// The name passed to or returned by the model.
    name: String,
    /// The `.npy` file, relative to `/input` or `/output`.
    file: String,
    dtype: TensorType,
    shape: Vec<usize>,
}

/// The job's result, stored in `/output/result.json`.
#[derive(Debug, Serialize)]
struct Report {
    /// The model file (relative to `/input`) or `name:<registered name>`.
    model: String,
    target: &'static str,
    inputs: Vec<TensorInfo>,
    outputs: Vec<TensorInfo>,
    load_ms: f64,
    compute_ms: f64,
}

fn main() -> ExitCode {
    netmind_sdk::run(|| run(&parse_args(&netmind_sdk::args())?))
}

fn run(options: &Options) -> Result<Report> {
    let files = npy_inputs()?;
    netmind_sdk::progress(0, 3, "loading the model");
    let started = Instant::now();
    let (graph, model) = load(options)?;
    let mut context = graph.context()?;
    let load_ms = millis(started);

    let mut tensors = Vec::with_capacity(files.len());
    let mut inputs = Vec::with_capacity(files.len());
    for (i, file) in files.iter().enumerate() {
        let tensor = netmind_sdk::npy::read_file(netmind_sdk::input_path(file))?;
        let name = if options.positional {
            i.to_string()
        } else {
            file_stem(file).to_owned()
        };
        println!(
            "input  {name}: {} {:?} ({file})",
            tensor.ty(),
            tensor.shape()
        );
        inputs.push(TensorInfo {
            name,
            file: file.clone(),
            dtype: tensor.ty(),
            shape: tensor.shape().to_vec(),
        });
        tensors.push(tensor);
    }

    netmind_sdk::progress(1, 3, "computing");
    let named: Vec<(&str, &Tensor)> = inputs
        .iter()
        .map(|info| info.name.as_str())
        .zip(&tensors)
        .collect();
    let started = Instant::now();
    let results = context.compute(&named)?;
    let compute_ms = millis(started);

    netmind_sdk::progress(2, 3, "writing the outputs");
    let mut used = Vec::new();
    let mut outputs = Vec::with_capacity(results.len());
    for (i, (name, tensor)) in results.iter().enumerate() {
        let file = format!("{}.npy", unique_file_stem(name, i, &mut used));
        netmind_sdk::npy::write_output(&file, tensor)?;
        println!(
            "output {name}: {} {:?} ({file})",
            tensor.ty(),
            tensor.shape()
        );
        outputs.push(TensorInfo {
            name: name.to_owned(),
            file,
            dtype: tensor.ty(),
            shape: tensor.shape().to_vec(),
        });
    }
    netmind_sdk::progress(3, 3, "done");
    println!("loaded in {load_ms:.1} ms, computed in {compute_ms:.1} ms");
    Ok(Report {
        model,
        target: options.target.as_str(),
        inputs,
        outputs,
        load_ms,
        compute_ms,
    })
}

/// Loads the model; returns the graph and how the result names the model.
fn load(options: &Options) -> Result<(Graph, String)> {
    match &options.model {
        ModelSource::Name(name) => {
            let graph = Graph::load_by_name(name)?;
            Ok((graph, format!("name:{name}")))
        }
        ModelSource::File(path) => {
            let full = netmind_sdk::input_path(path);
            let bytes = match std::fs::read(&full) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(Error::invalid(missing_model_message(path)));
                }
                Err(e) => return Err(Error::io(full, e)),
            };
            let graph = Graph::load(&bytes, Encoding::Onnx, options.target)?;
            Ok((graph, path.clone()))
        }
    }
}

/// What to say when the model file is not there.
fn missing_model_message(path: &str) -> String {
    if path == DEFAULT_MODEL {
        format!(
            "no model: put the ONNX model in the input directory as {DEFAULT_MODEL} \
             (netmind run samples/onnx-run --input DIR, with DIR/{DEFAULT_MODEL}), or pass \
             --model PATH (relative to /input) or --model-name NAME (a model the host registered)"
        )
    } else {
        format!(
            "no model at {}: --model takes a path relative to /input",
            netmind_sdk::input_path(path).display()
        )
    }
}

/// The `.npy` files directly in `/input`, sorted by name.
fn npy_inputs() -> Result<Vec<String>> {
    let files: Vec<String> = netmind_sdk::inputs()?
        .into_iter()
        .map(|input| input.name)
        .filter(|name| !name.contains('/') && name.to_ascii_lowercase().ends_with(".npy"))
        .collect();
    if files.is_empty() {
        return Err(Error::invalid(
            "no .npy inputs in /input: save one array per model input with numpy.save, \
             e.g. DIR/x.npy for the input named `x`",
        ));
    }
    Ok(files)
}

/// `x.npy` → `x`.
fn file_stem(file: &str) -> &str {
    Path::new(file)
        .file_stem()
        .and_then(|stem| stem.to_str())
        .unwrap_or(file)
}

/// `name` with every character outside `[A-Za-z0-9._-]` replaced by `_` (`output_<i>` when empty, or
/// when it would be `.`/`..`), made unique among `used` by a `_2`, `_3`, ... suffix.
fn unique_file_stem(name: &str, i: usize, used: &mut Vec<String>) -> String {
    let mut stem: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if stem.is_empty() || stem == "." || stem == ".." {
        stem = format!("output_{i}");
    }
    let mut candidate = stem.clone();
    let mut n = 2;
    while used.iter().any(|u| u.eq_ignore_ascii_case(&candidate)) {
        candidate = format!("{stem}_{n}");
        n += 1;
    }
    used.push(candidate.clone());
    candidate
}

fn millis(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

fn parse_args(args: &[String]) -> Result<Options> {
    let mut model = None;
    let mut positional = false;
    let mut target = Target::Cpu;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = |what: &str| {
            inline
                .clone()
                .or_else(|| iter.next().cloned())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Error::invalid(format!("{flag} needs {what}; {USAGE}")))
        };
        match flag {
            "--model" => set_model(&mut model, ModelSource::File(value("a path")?))?,
            "--model-name" => set_model(&mut model, ModelSource::Name(value("a name")?))?,
            "--target" => {
                target = match value("cpu or gpu")?.as_str() {
                    "cpu" => Target::Cpu,
                    "gpu" => Target::Gpu,
                    other => {
                        return Err(Error::invalid(format!(
                            "--target must be cpu or gpu, not `{other}`"
                        )));
                    }
                };
            }
            "--positional" if inline.is_none() => positional = true,
            _ => {
                return Err(Error::invalid(format!("unknown argument `{arg}`; {USAGE}")));
            }
        }
    }
    Ok(Options {
        model: model.unwrap_or_else(|| ModelSource::File(DEFAULT_MODEL.to_owned())),
        positional,
        target,
    })
}

fn set_model(model: &mut Option<ModelSource>, source: ModelSource) -> Result<()> {
    if model.is_some() {
        return Err(Error::invalid(format!(
            "give the model once, with --model or --model-name; {USAGE}"
        )));
    }
    *model = Some(source);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options> {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        parse_args(&args)
    }

    #[test]
    fn parses_arguments() {
        let defaults = parse(&[]).unwrap();
        assert_eq!(defaults.model, ModelSource::File("model.onnx".into()));
        assert!(!defaults.positional);
        assert_eq!(defaults.target, Target::Cpu);
        let o = parse(&["--model", "m/net.onnx", "--positional", "--target=gpu"]).unwrap();
        assert_eq!(o.model, ModelSource::File("m/net.onnx".into()));
        assert!(o.positional);
        assert_eq!(o.target, Target::Gpu);
        let o = parse(&["--model-name=resnet50"]).unwrap();
        assert_eq!(o.model, ModelSource::Name("resnet50".into()));
    }

    #[test]
    fn rejects_bad_arguments() {
        let err = |args: &[&str]| parse(args).unwrap_err().to_string();
        assert!(err(&["--model"]).starts_with("--model needs a path"));
        assert!(err(&["--model", "a", "--model-name", "b"]).starts_with("give the model once"));
        assert!(err(&["--target", "tpu"]).contains("cpu or gpu"));
        assert!(err(&["--positional=yes"]).starts_with("unknown argument"));
        assert!(err(&["x.npy"]).contains(USAGE));
    }

    #[test]
    fn output_file_names_are_sanitized_and_unique() {
        let mut used = Vec::new();
        let names = ["label", "out:0", "out/0", "", "..", "Label", "a b-c.d"];
        let stems: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(i, n)| unique_file_stem(n, i, &mut used))
            .collect();
        assert_eq!(
            stems,
            [
                "label", "out_0", "out_0_2", "output_3", "output_4", "Label_2", "a_b-c.d"
            ]
        );
    }

    #[test]
    fn input_names_are_file_stems() {
        assert_eq!(file_stem("pixels.npy"), "pixels");
        assert_eq!(file_stem("input.1.npy"), "input.1");
    }

    #[test]
    fn missing_model_says_how_to_give_one() {
        let message = missing_model_message("model.onnx");
        assert!(message.contains("--model PATH") && message.contains("--model-name NAME"));
        assert!(missing_model_message("x.onnx").contains("/input/x.onnx"));
    }
}
