//! PostgreSQL types to Arrow types, and the binary wire format of each decoded
//! straight into the column's [`Sink`] (the format of `COPY ... (FORMAT binary)`
//! and of binary result rows alike).

use sluice_project::raw::NumericMode;
use tokio_postgres::types::{Kind, Type};

use super::sink::{ArrowKind, Sink};

/// Microseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Days from 1970-01-01 to 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;

/// How one PostgreSQL column's values are decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PgKind {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    /// `numeric` as Decimal128 with this scale.
    Numeric(i8),
    /// `numeric` as float64.
    NumericFloat,
    /// Text as it is (text, varchar, char(n), name, json, enum labels).
    Text,
    Jsonb,
    Uuid,
    Bytea,
    Date,
    Time,
    Timestamp,
    Timestamptz,
    Interval,
    Array(Box<PgKind>),
}

/// A column's type that sluice cannot read, with what to write instead.
pub(crate) struct Unmapped {
    pub(crate) reason: String,
    pub(crate) cast: &'static str,
}

/// The decoder and Arrow type of a column of type `ty` with modifier `typmod`.
pub(crate) fn map(
    ty: &Type,
    typmod: i32,
    numeric: NumericMode,
) -> Result<(PgKind, ArrowKind), Unmapped> {
    let unmapped = |reason: String| Unmapped {
        reason,
        cast: "text",
    };
    Ok(match *ty {
        Type::BOOL => (PgKind::Bool, ArrowKind::Bool),
        Type::INT2 => (PgKind::Int2, ArrowKind::I16),
        Type::INT4 => (PgKind::Int4, ArrowKind::I32),
        Type::INT8 => (PgKind::Int8, ArrowKind::I64),
        Type::FLOAT4 => (PgKind::Float4, ArrowKind::F32),
        Type::FLOAT8 => (PgKind::Float8, ArrowKind::F64),
        Type::NUMERIC => match numeric {
            NumericMode::Float => (PgKind::NumericFloat, ArrowKind::F64),
            NumericMode::Decimal => {
                // typmod = ((precision << 16) | scale) + 4; -1 when not declared.
                if typmod < 4 {
                    return Err(Unmapped {
                        reason: "`numeric` without a declared precision".into(),
                        cast: "numeric(38,10)",
                    });
                }
                let m = typmod - 4;
                let (p, s) = ((m >> 16) & 0xffff, m & 0xffff);
                if p > 38 || p == 0 {
                    return Err(Unmapped {
                        reason: format!("`numeric({p},{s})` has more than 38 digits"),
                        cast: "numeric(38,10)",
                    });
                }
                let (p, s) = (p as u8, s as i8);
                (PgKind::Numeric(s), ArrowKind::Decimal(p, s))
            }
        },
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::JSON | Type::XML => {
            (PgKind::Text, ArrowKind::Utf8)
        }
        Type::JSONB => (PgKind::Jsonb, ArrowKind::Utf8),
        Type::UUID => (PgKind::Uuid, ArrowKind::Utf8),
        Type::BYTEA => (PgKind::Bytea, ArrowKind::Binary),
        Type::DATE => (PgKind::Date, ArrowKind::Date),
        Type::TIME => (PgKind::Time, ArrowKind::Utf8),
        Type::TIMESTAMP => (PgKind::Timestamp, ArrowKind::Timestamp(false)),
        Type::TIMESTAMPTZ => (PgKind::Timestamptz, ArrowKind::Timestamp(true)),
        Type::INTERVAL => (PgKind::Interval, ArrowKind::Utf8),
        _ => match ty.kind() {
            Kind::Enum(_) => (PgKind::Text, ArrowKind::Utf8),
            Kind::Domain(base) => return map(base, typmod, numeric),
            Kind::Array(item) => {
                if matches!(item.kind(), Kind::Array(_)) {
                    return Err(unmapped("arrays of arrays".into()));
                }
                let (k, a) = map(item, typmod, numeric).map_err(|e| Unmapped {
                    reason: format!("an array of {}", e.reason),
                    cast: "text",
                })?;
                (PgKind::Array(Box::new(k)), ArrowKind::List(Box::new(a)))
            }
            _ => {
                return Err(unmapped(format!(
                    "`{}` has no Arrow type in sluice",
                    ty.name()
                )));
            }
        },
    })
}

/// Reads a big-endian integer of `N` bytes at the start of `b`.
fn be<const N: usize>(b: &[u8]) -> Result<[u8; N], String> {
    b.get(..N)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| format!("a value of {} bytes where {N} were expected", b.len()))
}

/// Decodes one value (`None`: NULL) of `kind` into `sink`.
pub(crate) fn decode(kind: &PgKind, sink: &mut Sink, v: Option<&[u8]>) -> Result<(), String> {
    let Some(v) = v else {
        sink.null();
        return Ok(());
    };
    match (kind, sink) {
        (PgKind::Bool, Sink::Bool(b)) => b.append_value(be::<1>(v)?[0] != 0),
        (PgKind::Int2, Sink::I16(b)) => b.append_value(i16::from_be_bytes(be(v)?)),
        (PgKind::Int4, Sink::I32(b)) => b.append_value(i32::from_be_bytes(be(v)?)),
        (PgKind::Int8, Sink::I64(b)) => b.append_value(i64::from_be_bytes(be(v)?)),
        (PgKind::Float4, Sink::F32(b)) => b.append_value(f32::from_be_bytes(be(v)?)),
        (PgKind::Float8, Sink::F64(b)) => b.append_value(f64::from_be_bytes(be(v)?)),
        (PgKind::Numeric(scale), Sink::Decimal(b, ..)) => b.append_value(numeric_i128(v, *scale)?),
        (PgKind::NumericFloat, Sink::F64(b)) => b.append_value(numeric_f64(v)?),
        (PgKind::Text, Sink::Utf8(b)) => b.append_value(utf8(v)?),
        (PgKind::Jsonb, Sink::Utf8(b)) => match v.split_first() {
            Some((1, json)) => b.append_value(utf8(json)?),
            _ => return Err("a jsonb value of an unknown version".into()),
        },
        (PgKind::Uuid, Sink::Utf8(b)) => {
            let u = be::<16>(v)?;
            let mut s = String::with_capacity(36);
            for (i, byte) in u.iter().enumerate() {
                if matches!(i, 4 | 6 | 8 | 10) {
                    s.push('-');
                }
                s.push_str(&format!("{byte:02x}"));
            }
            b.append_value(s)
        }
        (PgKind::Bytea, Sink::Binary(b)) => b.append_value(v),
        (PgKind::Date, Sink::Date(b)) => {
            let d = i32::from_be_bytes(be(v)?);
            if d == i32::MAX || d == i32::MIN {
                return Err("the date is infinity, which Arrow cannot hold".into());
            }
            b.append_value(d.checked_add(PG_EPOCH_DAYS).ok_or("date out of range")?)
        }
        (PgKind::Time, Sink::Utf8(b)) => b.append_value(time_text(i64::from_be_bytes(be(v)?))),
        (PgKind::Timestamp | PgKind::Timestamptz, Sink::Timestamp(b, _)) => {
            let t = i64::from_be_bytes(be(v)?);
            if t == i64::MAX || t == i64::MIN {
                return Err("the timestamp is infinity, which Arrow cannot hold".into());
            }
            b.append_value(
                t.checked_add(PG_EPOCH_MICROS)
                    .ok_or("timestamp out of range")?,
            )
        }
        (PgKind::Interval, Sink::Utf8(b)) => {
            let micros = i64::from_be_bytes(be(v)?);
            let days = i32::from_be_bytes(be(v.get(8..).unwrap_or_default())?);
            let months = i32::from_be_bytes(be(v.get(12..).unwrap_or_default())?);
            b.append_value(interval_text(months, days, micros))
        }
        (PgKind::Array(item), Sink::List(list)) => {
            let n = array(item, &mut list.items, v)?;
            list.close(n)?
        }
        (kind, _) => return Err(format!("internal: no builder for {kind:?}")),
    }
    Ok(())
}

/// A time of day as PostgreSQL prints it: `HH:MM:SS`, and `.ffffff` when
/// there are fractions of a second (trailing zeros dropped).
fn time_text(micros: i64) -> String {
    let (secs, frac) = (micros.div_euclid(1_000_000), micros.rem_euclid(1_000_000));
    let hms = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    if frac == 0 {
        hms
    } else {
        format!("{hms}.{}", format!("{frac:06}").trim_end_matches('0'))
    }
}

/// An interval in ISO 8601 (`P1Y2M3DT4H5M6.5S`), as PostgreSQL's
/// `intervalstyle = iso_8601` prints it; each part keeps its sign.
fn interval_text(months: i32, days: i32, micros: i64) -> String {
    let mut s = String::from("P");
    let (y, m) = (months / 12, months % 12);
    for (n, unit) in [
        (i64::from(y), 'Y'),
        (i64::from(m), 'M'),
        (i64::from(days), 'D'),
    ] {
        if n != 0 {
            s.push_str(&format!("{n}{unit}"));
        }
    }
    if micros != 0 {
        s.push('T');
        let (h, rest) = (micros / 3_600_000_000, micros % 3_600_000_000);
        let (min, rest) = (rest / 60_000_000, rest % 60_000_000);
        if h != 0 {
            s.push_str(&format!("{h}H"));
        }
        if min != 0 {
            s.push_str(&format!("{min}M"));
        }
        if rest != 0 {
            let sign = if rest < 0 { "-" } else { "" };
            let (sec, frac) = (rest.abs() / 1_000_000, rest.abs() % 1_000_000);
            if frac == 0 {
                s.push_str(&format!("{sign}{sec}S"));
            } else {
                let f = format!("{frac:06}");
                s.push_str(&format!("{sign}{sec}.{}S", f.trim_end_matches('0')));
            }
        }
    }
    if s == "P" {
        s.push_str("T0S");
    }
    s
}

fn utf8(v: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(v).map_err(|e| format!("text that is not UTF-8 ({e})"))
}

/// A one-dimensional array's items into `items`; returns how many.
fn array(item: &PgKind, items: &mut Sink, v: &[u8]) -> Result<usize, String> {
    let ndim = i32::from_be_bytes(be(v)?);
    if ndim == 0 {
        return Ok(0);
    }
    if ndim != 1 {
        return Err(format!(
            "a {ndim}-dimensional array; only one-dimensional arrays become lists"
        ));
    }
    let len = i32::from_be_bytes(be(v.get(12..).unwrap_or_default())?);
    let mut at = 20;
    for _ in 0..len {
        let n = i32::from_be_bytes(be(v.get(at..).unwrap_or_default())?);
        at += 4;
        if n < 0 {
            decode(item, items, None)?;
        } else {
            let end = at + n as usize;
            let value = v.get(at..end).ok_or("a truncated array")?;
            decode(item, items, Some(value))?;
            at = end;
        }
    }
    Ok(len.max(0) as usize)
}

/// The header of a binary `numeric`: digits (base 10000), weight, sign, and
/// the digits.
fn numeric_parts(v: &[u8]) -> Result<(i16, u16, Vec<u16>), String> {
    let ndigits = i16::from_be_bytes(be(v)?);
    let weight = i16::from_be_bytes(be(v.get(2..).unwrap_or_default())?);
    let sign = u16::from_be_bytes(be(v.get(4..).unwrap_or_default())?);
    let mut digits = Vec::with_capacity(ndigits.max(0) as usize);
    for i in 0..ndigits.max(0) as usize {
        digits.push(u16::from_be_bytes(be(v
            .get(8 + 2 * i..)
            .unwrap_or_default())?));
    }
    Ok((weight, sign, digits))
}

const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;

/// A binary `numeric` as an integer scaled by `10^scale`.
fn numeric_i128(v: &[u8], scale: i8) -> Result<i128, String> {
    let (weight, sign, digits) = numeric_parts(v)?;
    if matches!(sign, NUMERIC_NAN | NUMERIC_PINF | NUMERIC_NINF) {
        return Err(
            "NaN or infinity, which a decimal cannot hold (use `numeric = \"float\"`)".into(),
        );
    }
    let overflow = || "a number with more digits than its declared precision".to_string();
    let places = || format!("a number with more than {scale} decimal places");
    let scale = i32::from(scale);
    // Digits below 10^-scale are dropped as they come (they must be zeros),
    // so that a value that fits i128 is never overflowed by the zeros that
    // pad its last base-10000 digit.
    let mut acc: i128 = 0;
    // The power of ten of `acc`'s last digit.
    let mut last = 4 * (i32::from(weight) + 1);
    for (i, d) in digits.iter().enumerate() {
        // The power of ten of this base-10000 digit's last decimal digit.
        let low = 4 * (i32::from(weight) - i as i32);
        let drop = (-(low + scale)).clamp(0, 4) as u32;
        let unit = 10i128.pow(drop);
        let d = i128::from(*d);
        if d % unit != 0 {
            return Err(places());
        }
        if drop == 4 {
            continue;
        }
        acc = acc
            .checked_mul(10i128.pow(4 - drop))
            .and_then(|a| a.checked_add(d / unit))
            .ok_or_else(overflow)?;
        last = low + drop as i32;
    }
    // The value is `acc` times 10^last; the decimal is the value times 10^scale.
    let shift = (last + scale).max(0) as u32;
    if acc != 0 {
        acc = acc
            .checked_mul(10i128.checked_pow(shift).ok_or_else(overflow)?)
            .ok_or_else(overflow)?;
    }
    Ok(if sign == NUMERIC_NEG { -acc } else { acc })
}

/// A binary `numeric` as the nearest float64.
fn numeric_f64(v: &[u8]) -> Result<f64, String> {
    let (weight, sign, digits) = numeric_parts(v)?;
    match sign {
        NUMERIC_NAN => return Ok(f64::NAN),
        NUMERIC_PINF => return Ok(f64::INFINITY),
        NUMERIC_NINF => return Ok(f64::NEG_INFINITY),
        _ => {}
    }
    // Written out in decimal and parsed, so the float is correctly rounded.
    let mut s = String::with_capacity(digits.len() * 4 + 8);
    if sign == NUMERIC_NEG {
        s.push('-');
    }
    s.push('0');
    for d in &digits {
        s.push_str(&format!("{d:04}"));
    }
    let exp = 4 * (i32::from(weight) + 1 - digits.len() as i32);
    s.push_str(&format!("e{exp}"));
    s.parse::<f64>()
        .map_err(|e| format!("a number that is not one ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut v = vec![];
        v.extend((digits.len() as i16).to_be_bytes());
        v.extend(weight.to_be_bytes());
        v.extend(sign.to_be_bytes());
        v.extend(dscale.to_be_bytes());
        for d in digits {
            v.extend(d.to_be_bytes());
        }
        v
    }

    #[test]
    fn numerics_decode_exactly_at_the_column_scale() {
        // 12345.67 = 1|2345|6700 with weight 1
        let v = numeric(1, 0, 2, &[1, 2345, 6700]);
        assert_eq!(numeric_i128(&v, 2), Ok(1_234_567));
        assert_eq!(numeric_i128(&v, 4), Ok(123_456_700));
        assert!(numeric_i128(&v, 1).is_err(), "a digit would be lost");
        let neg = numeric(-1, NUMERIC_NEG, 2, &[500]);
        assert_eq!(numeric_i128(&neg, 2), Ok(-5)); // -0.05
        assert_eq!(numeric_i128(&numeric(0, 0, 0, &[]), 3), Ok(0));
        // 1e20: one digit of weight 5
        assert_eq!(numeric_i128(&numeric(5, 0, 0, &[1]), 0), Ok(10i128.pow(20)));
        // 38 digits, numeric(38,10): the zeros padding the last base-10000
        // digit would overflow i128 if they were multiplied in first.
        let wide = numeric(
            6,
            0,
            10,
            &[1234, 5678, 9012, 3456, 7890, 1234, 5678, 123, 4567, 8900],
        );
        assert_eq!(
            numeric_i128(&wide, 10),
            Ok(12_345_678_901_234_567_890_123_456_780_123_456_789)
        );
        assert_eq!(numeric_f64(&v), Ok(12345.67));
        assert_eq!(numeric_f64(&neg), Ok(-0.05));
        assert!(numeric_f64(&numeric(0, NUMERIC_NAN, 0, &[])).is_ok_and(f64::is_nan));
        assert!(numeric_i128(&numeric(0, NUMERIC_NAN, 0, &[]), 0).is_err());
    }

    #[test]
    fn times_and_intervals_print_as_postgres_does_in_iso_style() {
        assert_eq!(time_text(0), "00:00:00");
        assert_eq!(
            time_text(((13 * 60 + 5) * 60 + 9) * 1_000_000 + 250_000),
            "13:05:09.25"
        );
        assert_eq!(
            interval_text(14, 3, 4 * 3_600_000_000 + 5 * 60_000_000 + 6_500_000),
            "P1Y2M3DT4H5M6.5S"
        );
        assert_eq!(interval_text(0, 0, 0), "PT0S");
        assert_eq!(interval_text(-1, 0, -1_000_000), "P-1MT-1S");
    }
}
