//! Values between `spin:postgres/postgres@4.0.0` and PostgreSQL's binary protocol
//! (`tokio-postgres`): a parameter becomes a `ToSql` value, a column and its cells become Spin's
//! data type and values.
//!
//! Numbers, text, bytes, dates and times (`chrono`, always UTC), UUIDs, JSON and decimals
//! (`rust_decimal`) use the client crates' encodings; ranges, intervals, SQL `NULL` of any type
//! and cells of types Spin has no value for (`unsupported` with their raw bytes) are encoded
//! here, following PostgreSQL's binary formats.

use std::error::Error as StdError;

use bytes::{BufMut, BytesMut};
use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use rust_decimal::Decimal;
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, IsNull, Kind, ToSql, Type, to_sql_checked};

use host_world::postgres::spin::postgres::postgres::{DbDataType, DbValue, Interval, ParameterValue, RangeBoundKind};

type BoxError = Box<dyn StdError + Sync + Send>;

/// SQL `NULL`, whatever the parameter's type.
#[derive(Debug)]
struct Null;

impl ToSql for Null {
    fn to_sql(&self, _: &Type, _: &mut BytesMut) -> Result<IsNull, BoxError> {
        Ok(IsNull::Yes)
    }
    fn accepts(_: &Type) -> bool {
        true
    }
    to_sql_checked!();
}

/// A cell's raw bytes, for types Spin has no value for.
struct Raw(Vec<u8>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Raw, BoxError> {
        Ok(Raw(raw.to_vec()))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

/// PostgreSQL's `interval`: microseconds, days and months, each kept apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PgInterval {
    micros: i64,
    days: i32,
    months: i32,
}

impl ToSql for PgInterval {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        out.put_i64(self.micros);
        out.put_i32(self.days);
        out.put_i32(self.months);
        Ok(IsNull::No)
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::INTERVAL
    }
    to_sql_checked!();
}

impl<'a> FromSql<'a> for PgInterval {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<PgInterval, BoxError> {
        let raw: [u8; 16] = raw.try_into().map_err(|_| "an interval is 16 bytes")?;
        Ok(PgInterval {
            micros: i64::from_be_bytes(raw[0..8].try_into()?),
            days: i32::from_be_bytes(raw[8..12].try_into()?),
            months: i32::from_be_bytes(raw[12..16].try_into()?),
        })
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::INTERVAL
    }
}

/// A range bound: its value and whether it is included.
type Bound<T> = Option<(T, RangeBoundKind)>;

/// A PostgreSQL range of `T`; an absent bound is unbounded.
#[derive(Debug, Clone, PartialEq)]
struct PgRange<T> {
    lower: Bound<T>,
    upper: Bound<T>,
}

const RANGE_EMPTY: u8 = 0x01;
const RANGE_LOWER_INCLUSIVE: u8 = 0x02;
const RANGE_UPPER_INCLUSIVE: u8 = 0x04;
const RANGE_LOWER_UNBOUNDED: u8 = 0x08;
const RANGE_UPPER_UNBOUNDED: u8 = 0x10;

fn range_element(ty: &Type) -> Option<&Type> {
    match ty.kind() {
        Kind::Range(element) => Some(element),
        _ => None,
    }
}

impl<T: ToSql + std::fmt::Debug + Sync> ToSql for PgRange<T> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let element = range_element(ty).ok_or("not a range type")?;
        let mut flags = 0;
        for (bound, inclusive, unbounded) in
            [(&self.lower, RANGE_LOWER_INCLUSIVE, RANGE_LOWER_UNBOUNDED), (&self.upper, RANGE_UPPER_INCLUSIVE, RANGE_UPPER_UNBOUNDED)]
        {
            flags |= match bound {
                None => unbounded,
                Some((_, RangeBoundKind::Inclusive)) => inclusive,
                Some((_, RangeBoundKind::Exclusive)) => 0,
            };
        }
        out.put_u8(flags);
        for (value, _) in [&self.lower, &self.upper].into_iter().flatten() {
            let length_at = out.len();
            out.put_i32(0);
            if let IsNull::Yes = value.to_sql(element, out)? {
                return Err("a range bound cannot be NULL".into());
            }
            let length = i32::try_from(out.len() - length_at - 4)?;
            out[length_at..length_at + 4].copy_from_slice(&length.to_be_bytes());
        }
        Ok(IsNull::No)
    }
    fn accepts(ty: &Type) -> bool {
        range_element(ty).is_some_and(T::accepts)
    }
    to_sql_checked!();
}

impl<'a, T: FromSql<'a>> FromSql<'a> for PgRange<T> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<PgRange<T>, BoxError> {
        let element = range_element(ty).ok_or("not a range type")?;
        let (&flags, mut rest) = raw.split_first().ok_or("an empty range value")?;
        if flags & RANGE_EMPTY != 0 {
            // Spin has no empty range; the closest is a range that includes nothing it names.
            return Ok(PgRange { lower: None, upper: None });
        }
        let mut bound = |unbounded: u8, inclusive: u8| -> Result<Bound<T>, BoxError> {
            if flags & unbounded != 0 {
                return Ok(None);
            }
            let length = i32::from_be_bytes(rest.get(..4).ok_or("a truncated range")?.try_into()?) as usize;
            let value = T::from_sql(element, rest.get(4..4 + length).ok_or("a truncated range")?)?;
            rest = &rest[4 + length..];
            let kind = if flags & inclusive != 0 { RangeBoundKind::Inclusive } else { RangeBoundKind::Exclusive };
            Ok(Some((value, kind)))
        };
        let lower = bound(RANGE_LOWER_UNBOUNDED, RANGE_LOWER_INCLUSIVE)?;
        let upper = bound(RANGE_UPPER_UNBOUNDED, RANGE_UPPER_INCLUSIVE)?;
        Ok(PgRange { lower, upper })
    }
    fn accepts(ty: &Type) -> bool {
        range_element(ty).is_some_and(T::accepts)
    }
}

fn decimal(text: &str) -> Result<Decimal, String> {
    Decimal::from_str_exact(text).map_err(|e| format!("{text:?} is not a decimal: {e}"))
}

fn map_bound<A, B>(bound: Bound<A>, f: impl Fn(A) -> Result<B, String>) -> Result<Bound<B>, String> {
    bound.map(|(value, kind)| f(value).map(|v| (v, kind))).transpose()
}

fn date((year, month, day): (i32, u8, u8)) -> Result<NaiveDate, String> {
    NaiveDate::from_ymd_opt(year, month.into(), day.into()).ok_or_else(|| format!("{year}-{month}-{day} is not a date"))
}

fn time((hour, minute, second, nanos): (u8, u8, u8, u32)) -> Result<NaiveTime, String> {
    NaiveTime::from_hms_nano_opt(hour.into(), minute.into(), second.into(), nanos)
        .ok_or_else(|| format!("{hour}:{minute}:{second}.{nanos:09} is not a time"))
}

/// A parameter as a value the client can send; `Err` says why it cannot be one.
pub fn parameter(value: ParameterValue) -> Result<Box<dyn ToSql + Send + Sync>, String> {
    Ok(match value {
        ParameterValue::Boolean(v) => Box::new(v),
        ParameterValue::Int8(v) => Box::new(v),
        ParameterValue::Int16(v) => Box::new(v),
        ParameterValue::Int32(v) => Box::new(v),
        ParameterValue::Int64(v) => Box::new(v),
        ParameterValue::Floating32(v) => Box::new(v),
        ParameterValue::Floating64(v) => Box::new(v),
        ParameterValue::Str(v) => Box::new(v),
        ParameterValue::Binary(v) => Box::new(v),
        ParameterValue::Date(v) => Box::new(date(v)?),
        ParameterValue::Time(v) => Box::new(time(v)?),
        ParameterValue::Datetime((year, month, day, hour, minute, second, nanos)) => {
            Box::new(NaiveDateTime::new(date((year, month, day))?, time((hour, minute, second, nanos))?))
        }
        ParameterValue::Timestamp(seconds) => {
            Box::new(chrono::DateTime::from_timestamp(seconds, 0).ok_or_else(|| format!("{seconds} is out of range"))?)
        }
        ParameterValue::Uuid(v) => Box::new(uuid::Uuid::parse_str(&v).map_err(|e| format!("{v:?} is not a UUID: {e}"))?),
        ParameterValue::Jsonb(v) => {
            Box::new(serde_json::from_slice::<serde_json::Value>(&v).map_err(|e| format!("not JSON: {e}"))?)
        }
        ParameterValue::Decimal(v) => Box::new(decimal(&v)?),
        ParameterValue::RangeInt32((lower, upper)) => Box::new(PgRange { lower, upper }),
        ParameterValue::RangeInt64((lower, upper)) => Box::new(PgRange { lower, upper }),
        ParameterValue::RangeDecimal((lower, upper)) => {
            Box::new(PgRange { lower: map_bound(lower, |v| decimal(&v))?, upper: map_bound(upper, |v| decimal(&v))? })
        }
        ParameterValue::ArrayInt32(v) => Box::new(v),
        ParameterValue::ArrayInt64(v) => Box::new(v),
        ParameterValue::ArrayDecimal(v) => {
            Box::new(v.iter().map(|d| d.as_deref().map(decimal).transpose()).collect::<Result<Vec<_>, _>>()?)
        }
        ParameterValue::ArrayStr(v) => Box::new(v),
        ParameterValue::Interval(Interval { micros, days, months }) => Box::new(PgInterval { micros, days, months }),
        ParameterValue::DbNull => Box::new(Null),
    })
}

/// Spin's data type of a column of type `ty`.
pub fn data_type(ty: &Type) -> DbDataType {
    match *ty {
        Type::BOOL => DbDataType::Boolean,
        Type::CHAR => DbDataType::Int8,
        Type::INT2 => DbDataType::Int16,
        Type::INT4 => DbDataType::Int32,
        Type::INT8 => DbDataType::Int64,
        Type::FLOAT4 => DbDataType::Floating32,
        Type::FLOAT8 => DbDataType::Floating64,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => DbDataType::Str,
        Type::BYTEA => DbDataType::Binary,
        Type::DATE => DbDataType::Date,
        Type::TIME => DbDataType::Time,
        Type::TIMESTAMP | Type::TIMESTAMPTZ => DbDataType::Datetime,
        Type::UUID => DbDataType::Uuid,
        Type::JSON | Type::JSONB => DbDataType::Jsonb,
        Type::NUMERIC => DbDataType::Decimal,
        Type::INT4_RANGE => DbDataType::RangeInt32,
        Type::INT8_RANGE => DbDataType::RangeInt64,
        Type::NUM_RANGE => DbDataType::RangeDecimal,
        Type::INT4_ARRAY => DbDataType::ArrayInt32,
        Type::INT8_ARRAY => DbDataType::ArrayInt64,
        Type::NUMERIC_ARRAY => DbDataType::ArrayDecimal,
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY | Type::BPCHAR_ARRAY => DbDataType::ArrayStr,
        Type::INTERVAL => DbDataType::Interval,
        _ => DbDataType::Other(ty.name().to_string()),
    }
}

fn date_value(d: NaiveDate) -> (i32, u8, u8) {
    (d.year(), d.month() as u8, d.day() as u8)
}

fn time_value(t: NaiveTime) -> (u8, u8, u8, u32) {
    (t.hour() as u8, t.minute() as u8, t.second() as u8, t.nanosecond())
}

fn datetime_value(dt: NaiveDateTime) -> DbValue {
    let (year, month, day) = date_value(dt.date());
    let (hour, minute, second, nanos) = time_value(dt.time());
    DbValue::Datetime((year, month, day, hour, minute, second, nanos))
}

fn decimal_bound(bound: Bound<Decimal>) -> Bound<String> {
    bound.map(|(v, kind)| (v.to_string(), kind))
}

/// Cell `index` of `row` as Spin's value (`db-null` for SQL `NULL`).
pub fn cell(row: &Row, index: usize) -> Result<DbValue, tokio_postgres::Error> {
    fn get<'a, T: FromSql<'a>>(row: &'a Row, index: usize, into: impl FnOnce(T) -> DbValue) -> Result<DbValue, tokio_postgres::Error> {
        Ok(row.try_get::<_, Option<T>>(index)?.map_or(DbValue::DbNull, into))
    }
    let ty = row.columns()[index].type_();
    match *ty {
        Type::BOOL => get(row, index, DbValue::Boolean),
        Type::CHAR => get(row, index, DbValue::Int8),
        Type::INT2 => get(row, index, DbValue::Int16),
        Type::INT4 => get(row, index, DbValue::Int32),
        Type::INT8 => get(row, index, DbValue::Int64),
        Type::FLOAT4 => get(row, index, DbValue::Floating32),
        Type::FLOAT8 => get(row, index, DbValue::Floating64),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => get(row, index, DbValue::Str),
        Type::BYTEA => get(row, index, DbValue::Binary),
        Type::DATE => get(row, index, |d: NaiveDate| DbValue::Date(date_value(d))),
        Type::TIME => get(row, index, |t: NaiveTime| DbValue::Time(time_value(t))),
        Type::TIMESTAMP => get(row, index, datetime_value),
        Type::TIMESTAMPTZ => get(row, index, |dt: chrono::DateTime<chrono::Utc>| datetime_value(dt.naive_utc())),
        Type::UUID => get(row, index, |u: uuid::Uuid| DbValue::Uuid(u.to_string())),
        Type::JSON | Type::JSONB => get(row, index, |j: serde_json::Value| DbValue::Jsonb(j.to_string().into_bytes())),
        Type::NUMERIC => get(row, index, |d: Decimal| DbValue::Decimal(d.to_string())),
        Type::INT4_RANGE => get(row, index, |r: PgRange<i32>| DbValue::RangeInt32((r.lower, r.upper))),
        Type::INT8_RANGE => get(row, index, |r: PgRange<i64>| DbValue::RangeInt64((r.lower, r.upper))),
        Type::NUM_RANGE => {
            get(row, index, |r: PgRange<Decimal>| DbValue::RangeDecimal((decimal_bound(r.lower), decimal_bound(r.upper))))
        }
        Type::INT4_ARRAY => get(row, index, DbValue::ArrayInt32),
        Type::INT8_ARRAY => get(row, index, DbValue::ArrayInt64),
        Type::NUMERIC_ARRAY => get(row, index, |v: Vec<Option<Decimal>>| {
            DbValue::ArrayDecimal(v.into_iter().map(|d| d.map(|d| d.to_string())).collect())
        }),
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY | Type::BPCHAR_ARRAY => get(row, index, DbValue::ArrayStr),
        Type::INTERVAL => get(row, index, |i: PgInterval| {
            DbValue::Interval(Interval { micros: i.micros, days: i.days, months: i.months })
        }),
        _ => get(row, index, |raw: Raw| DbValue::Unsupported(raw.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_intervals_round_trip_through_the_binary_format() {
        let range = PgRange { lower: Some((30, RangeBoundKind::Exclusive)), upper: None };
        let mut out = BytesMut::new();
        range.to_sql(&Type::INT4_RANGE, &mut out).unwrap();
        assert_eq!(out[0], RANGE_UPPER_UNBOUNDED);
        assert_eq!(PgRange::<i32>::from_sql(&Type::INT4_RANGE, &out).unwrap(), range);
        assert!(!<PgRange<i32> as ToSql>::accepts(&Type::INT8_RANGE));
        assert!(<PgRange<i32> as FromSql>::accepts(&Type::INT4_RANGE));

        let interval = PgInterval { micros: 123456, days: 10, months: 200 };
        let mut out = BytesMut::new();
        interval.to_sql(&Type::INTERVAL, &mut out).unwrap();
        assert_eq!(PgInterval::from_sql(&Type::INTERVAL, &out).unwrap(), interval);
    }

    #[test]
    fn bad_parameters_are_refused_with_a_reason() {
        assert!(parameter(ParameterValue::Decimal("12.5".into())).is_ok());
        assert!(parameter(ParameterValue::Decimal("twelve".into())).unwrap_err().contains("not a decimal"));
        assert!(parameter(ParameterValue::Date((2025, 2, 30))).is_err());
        assert!(parameter(ParameterValue::Uuid("x".into())).is_err());
        assert!(parameter(ParameterValue::Jsonb(b"{".to_vec())).is_err());
    }
}
