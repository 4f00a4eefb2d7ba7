//! Resource quantities as integers: the scheduler compares and sums them on
//! every decision, so they are parsed once into milli-units.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// The value of `quantity` in thousandths of its unit, rounded up (so a
/// request of `1.0001m` CPU counts as 2 millicores, never as 1). Malformed
/// quantities count as zero: the API server validates them on write.
pub fn milli_value(quantity: &Quantity) -> i64 {
    parse_milli(quantity.0.trim()).unwrap_or(0)
}

/// The value of `quantity` in whole units, rounded up (bytes of memory).
pub fn value(quantity: &Quantity) -> i64 {
    let milli = milli_value(quantity);
    milli / 1000 + i64::from(milli % 1000 > 0)
}

fn parse_milli(text: &str) -> Option<i64> {
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let number_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(number_end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let digits: i128 = format!("{whole}{fraction}").parse().ok()?;
    let (binary_power, decimal_exponent): (u32, i32) = match suffix {
        "" => (0, 0),
        "Ki" => (1, 0),
        "Mi" => (2, 0),
        "Gi" => (3, 0),
        "Ti" => (4, 0),
        "Pi" => (5, 0),
        "Ei" => (6, 0),
        "n" => (0, -9),
        "u" => (0, -6),
        "m" => (0, -3),
        "k" => (0, 3),
        "M" => (0, 6),
        "G" => (0, 9),
        "T" => (0, 12),
        "P" => (0, 15),
        "E" => (0, 18),
        other => {
            let exponent = other.strip_prefix(['e', 'E'])?;
            (0, exponent.parse().ok()?)
        }
    };
    let fraction_digits = i32::try_from(fraction.len()).ok()?;
    let scaled = digits.checked_mul(1024_i128.checked_pow(binary_power)?)?;
    // Milli-units: three more decimal places than the unit itself.
    let exponent = decimal_exponent + 3 - fraction_digits;
    let milli = if exponent >= 0 {
        scaled.checked_mul(10_i128.checked_pow(exponent.unsigned_abs())?)?
    } else {
        let divisor = 10_i128
            .checked_pow(exponent.unsigned_abs())
            .unwrap_or(i128::MAX);
        scaled / divisor + i128::from(scaled % divisor > 0)
    };
    let milli = i64::try_from(milli).unwrap_or(i64::MAX);
    Some(if negative { -milli } else { milli })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity(s.to_string())
    }

    #[test]
    fn cpu_quantities_in_millicores() {
        assert_eq!(milli_value(&q("100m")), 100);
        assert_eq!(milli_value(&q("1")), 1000);
        assert_eq!(milli_value(&q("0.5")), 500);
        assert_eq!(milli_value(&q("2.25")), 2250);
        assert_eq!(milli_value(&q("1500u")), 2);
        assert_eq!(milli_value(&q("1e3")), 1_000_000);
    }

    #[test]
    fn memory_quantities_in_bytes() {
        assert_eq!(value(&q("1Ki")), 1024);
        assert_eq!(value(&q("128Mi")), 128 * 1024 * 1024);
        assert_eq!(value(&q("1.5Gi")), 3 * 512 * 1024 * 1024);
        assert_eq!(value(&q("1G")), 1_000_000_000);
        assert_eq!(value(&q("500m")), 1);
    }

    #[test]
    fn malformed_quantities_count_as_zero() {
        assert_eq!(milli_value(&q("")), 0);
        assert_eq!(milli_value(&q("abc")), 0);
        assert_eq!(milli_value(&q("1Xi")), 0);
    }
}
