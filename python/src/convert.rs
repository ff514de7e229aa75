//! Python values and JSON: a movie is any JSON-compatible `dict` with a
//! string `id`; every value comes back as the type it went in as (an `int`
//! stays an `int`, a `float` a `float`, dict keys in their order).

use movie_queue::{MOVIE_NESTING_MAX, Movie, QueueEntry};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};

/// A Python value as JSON, `depth` the level it stands at (a movie's dict
/// is level 1): a dict or list past the library's `MOVIE_NESTING_MAX`
/// levels is refused here, as the library refuses it, before the
/// conversion could recurse without end.
///
/// # Errors
/// `TypeError` for a value JSON has no type for (a non-string dict key, a
/// set, an object); `ValueError` for NaN or infinity, an integer beyond
/// 64 bits, nesting deeper than `MOVIE_NESTING_MAX` (64).
pub fn to_json(value: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
    let container =
        value.is_instance_of::<PyDict>() || value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>();
    if container && depth > MOVIE_NESTING_MAX {
        return Err(PyValueError::new_err(format!(
            "the movie nests {depth} levels deep or more (its dict is the first), over the limit of {MOVIE_NESTING_MAX}"
        )));
    }
    if value.is_none() {
        Ok(Value::Null)
    } else if let Ok(flag) = value.cast::<PyBool>() {
        Ok(Value::Bool(flag.is_true()))
    } else if value.is_instance_of::<PyInt>() {
        if let Ok(number) = value.extract::<i64>() {
            Ok(Value::from(number))
        } else if let Ok(number) = value.extract::<u64>() {
            Ok(Value::from(number))
        } else {
            Err(PyValueError::new_err(format!(
                "the integer {value} does not fit in 64 bits"
            )))
        }
    } else if value.is_instance_of::<PyFloat>() {
        let number: f64 = value.extract()?;
        Number::from_f64(number)
            .map(Value::Number)
            .ok_or_else(|| PyValueError::new_err(format!("{number} is not a JSON number")))
    } else if let Ok(text) = value.cast::<PyString>() {
        Ok(Value::String(text.to_cow()?.into_owned()))
    } else if let Ok(dict) = value.cast::<PyDict>() {
        let mut map = Map::with_capacity(dict.len());
        for (key, item) in dict.iter() {
            let Ok(key) = key.cast::<PyString>() else {
                return Err(PyTypeError::new_err(format!(
                    "dict keys must be strings, not {}",
                    key.get_type().name()?
                )));
            };
            map.insert(key.to_cow()?.into_owned(), to_json(&item, depth + 1)?);
        }
        Ok(Value::Object(map))
    } else if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
        let items: PyResult<Vec<Value>> = value.try_iter()?.map(|item| to_json(&item?, depth + 1)).collect();
        Ok(Value::Array(items?))
    } else {
        Err(PyTypeError::new_err(format!(
            "a {} is not JSON-compatible",
            value.get_type().name()?
        )))
    }
}

/// JSON as a Python value: integers as `int`, other numbers as `float`.
pub fn to_python<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(flag) => PyBool::new(py, *flag).to_owned().into_any(),
        Value::Number(number) => {
            if let Some(integer) = number.as_i64() {
                integer.into_pyobject(py)?.into_any()
            } else if let Some(integer) = number.as_u64() {
                integer.into_pyobject(py)?.into_any()
            } else {
                number.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(text) => PyString::new(py, text).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_python(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (key, item) in map {
                dict.set_item(key, to_python(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

/// A movie from a Python `dict`.
///
/// Whether a bad movie is a `TypeError` or a `ValueError` is decided here,
/// from the Python value: a declared field of the wrong type is a
/// `TypeError` before the library sees it, and whatever the library then
/// refuses (an empty `id`) is a `ValueError`.
///
/// # Errors
/// `TypeError` when it is not a dict, or its `id`, `title`, `year`,
/// `slug` or `imdb_id` has the wrong type; `ValueError` when it has no
/// `id` or an empty one.
pub fn movie(value: &Bound<'_, PyAny>) -> PyResult<Movie> {
    let Ok(dict) = value.cast::<PyDict>() else {
        return Err(PyTypeError::new_err(format!(
            "a movie is a dict, not a {}",
            value.get_type().name()?
        )));
    };
    match dict.get_item("id")? {
        None => return Err(PyValueError::new_err("the movie has no 'id'")),
        Some(id) if !id.is_instance_of::<PyString>() => {
            return Err(PyTypeError::new_err(format!(
                "the movie's 'id' must be a str, not {}",
                id.get_type().name()?
            )));
        }
        Some(_) => {}
    }
    check_declared_types(dict)?;
    Movie::from_value(to_json(value, 1)?).map_err(|error| PyValueError::new_err(error.to_string()))
}

/// The declared fields' types: `title`, `slug` and `imdb_id` a `str`,
/// `year` a `str` or an `int` (not a `bool`), each may be `None`.
///
/// # Errors
/// `TypeError` naming the field and the type it has.
fn check_declared_types(dict: &Bound<'_, PyDict>) -> PyResult<()> {
    for key in ["title", "year", "slug", "imdb_id"] {
        let Some(field) = dict.get_item(key)? else {
            continue;
        };
        let text = field.is_instance_of::<PyString>();
        let integer = field.is_instance_of::<PyInt>() && !field.is_instance_of::<PyBool>();
        let allowed = field.is_none() || text || (key == "year" && integer);
        if !allowed {
            let expected = if key == "year" { "a str or an int" } else { "a str" };
            return Err(PyTypeError::new_err(format!(
                "the movie's '{key}' must be {expected}, not {}",
                field.get_type().name()?
            )));
        }
    }
    Ok(())
}

/// A movie id from a `str`, or from a movie `dict` (its `id`).
///
/// # Errors
/// `TypeError` for anything else; `ValueError` for a dict without an id.
pub fn movie_id(value: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(text) = value.cast::<PyString>() {
        return Ok(text.to_cow()?.into_owned());
    }
    if value.is_instance_of::<PyDict>() {
        return Ok(movie(value)?.id().to_owned());
    }
    Err(PyTypeError::new_err(format!(
        "a movie id is a str (or a movie dict), not a {}",
        value.get_type().name()?
    )))
}

/// Movie ids from an iterable of `str` (a list, a set, a generator, the
/// keys of a dict), for the argument `name`.
///
/// # Errors
/// `TypeError` for a `str`, `bytes` or `bytearray` itself (a `str` iterates
/// as its characters, so `"603"` would be the ids `"6"`, `"0"`, `"3"`),
/// for anything not iterable, and for an item that is not a `str`.
pub fn ids(value: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<String>> {
    if value.is_instance_of::<PyString>() || value.is_instance_of::<PyBytes>() || value.is_instance_of::<PyByteArray>()
    {
        return Err(PyTypeError::new_err(format!(
            "{name} must be a collection of str ids, not a {} (it would iterate as its characters); \
             wrap one id in a list: [{}]",
            value.get_type().name()?,
            value.repr()?
        )));
    }
    let mut ids = Vec::new();
    for id in value.try_iter()? {
        let id = id?;
        let Ok(text) = id.cast::<PyString>() else {
            return Err(PyTypeError::new_err(format!(
                "{name} must hold str ids, not {}",
                id.get_type().name()?
            )));
        };
        ids.push(text.to_cow()?.into_owned());
    }
    Ok(ids)
}

/// An entry as the dict the application's queues hold.
pub fn entry<'py>(py: Python<'py>, entry: &QueueEntry) -> PyResult<Bound<'py, PyAny>> {
    to_python(py, &entry.to_value())
}

/// Entries as a list of dicts.
pub fn entries<'py>(py: Python<'py>, entries: &[QueueEntry]) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for item in entries {
        list.append(entry(py, item)?)?;
    }
    Ok(list)
}

/// A Unix time in seconds from an `int` or a `float`.
///
/// # Errors
/// `TypeError` for another type (a `bool` too); `ValueError` for NaN or infinity.
pub fn seconds(value: &Bound<'_, PyAny>, name: &str) -> PyResult<f64> {
    if value.is_instance_of::<PyBool>() || !(value.is_instance_of::<PyInt>() || value.is_instance_of::<PyFloat>()) {
        return Err(PyTypeError::new_err(format!(
            "{name} must be an int or a float (Unix seconds), not {}",
            value.get_type().name()?
        )));
    }
    let time: f64 = value.extract()?;
    if time.is_finite() {
        Ok(time)
    } else {
        Err(PyValueError::new_err(format!("{name} {time} is not a finite time")))
    }
}
