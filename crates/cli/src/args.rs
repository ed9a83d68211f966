//! A small flag parser: `--name value` pairs and positional arguments.

use std::collections::BTreeMap;

/// Parsed flags and positionals.
#[derive(Debug, Default)]
pub(crate) struct Args {
    flags: BTreeMap<String, String>,
    pub(crate) positional: Vec<String>,
}

impl Args {
    /// Parses `argv`, accepting only the flags in `known` (each takes a
    /// value, as `--flag value` or `--flag=value`). `--` ends the flags.
    pub(crate) fn parse(argv: &[String], known: &[&str]) -> Result<Args, String> {
        let mut args = Args::default();
        let mut i = 0;
        let mut flags_done = false;
        while i < argv.len() {
            let a = &argv[i];
            if !flags_done && a == "--" {
                flags_done = true;
            } else if !flags_done && a.starts_with("--") {
                let (name, inline) = match a[2..].split_once('=') {
                    Some((n, v)) => (n, Some(v.to_string())),
                    None => (&a[2..], None),
                };
                if !known.contains(&name) {
                    return Err(format!("unknown flag --{name}"));
                }
                let value = match inline {
                    Some(v) => v,
                    None => {
                        i += 1;
                        argv.get(i)
                            .cloned()
                            .ok_or_else(|| format!("flag --{name} needs a value"))?
                    }
                };
                if args.flags.insert(name.to_string(), value).is_some() {
                    return Err(format!("flag --{name} given twice"));
                }
            } else {
                args.positional.push(a.clone());
            }
            i += 1;
        }
        Ok(args)
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.flags.get(name).map(String::as_str)
    }

    /// A flag parsed as `T`, naming the flag and what it takes on error.
    pub(crate) fn parsed<T: FlagValue>(&self, name: &str) -> Result<Option<T>, String> {
        self.get(name)
            .map(|v| {
                v.parse::<T>()
                    .map_err(|_| format!("--{name} {v:?} is not {}", T::EXPECTED))
            })
            .transpose()
    }

    /// A comma-separated list flag.
    pub(crate) fn list<T: FlagValue>(&self, name: &str) -> Result<Option<Vec<T>>, String> {
        self.get(name)
            .map(|v| {
                v.split(',')
                    .map(|item| {
                        item.trim().parse::<T>().map_err(|_| {
                            format!("--{name}: {:?} is not {}", item.trim(), T::EXPECTED)
                        })
                    })
                    .collect()
            })
            .transpose()
    }
}

/// A flag's value type, with what it accepts for error messages.
pub(crate) trait FlagValue: std::str::FromStr {
    /// What a valid value is, after "is not".
    const EXPECTED: &'static str;
}

impl FlagValue for u32 {
    const EXPECTED: &'static str = "a whole number from 0 to 4294967295";
}

impl FlagValue for u64 {
    const EXPECTED: &'static str = "a whole number from 0 to 18446744073709551615";
}

impl FlagValue for usize {
    const EXPECTED: &'static str = "a whole number from 0 to 18446744073709551615";
}

impl FlagValue for String {
    const EXPECTED: &'static str = "text";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_flags_values_and_positionals() {
        let a = Args::parse(
            &argv("--shards 8 k1 --scheme=jump -- --k2"),
            &["shards", "scheme"],
        )
        .unwrap();
        assert_eq!(a.get("shards"), Some("8"));
        assert_eq!(a.get("scheme"), Some("jump"));
        assert_eq!(a.positional, ["k1", "--k2"]);
        assert_eq!(a.parsed::<u32>("shards").unwrap(), Some(8));
    }

    #[test]
    fn rejects_unknown_repeated_and_valueless_flags() {
        assert!(Args::parse(&argv("--bogus 1"), &["shards"]).is_err());
        assert!(Args::parse(&argv("--shards 1 --shards 2"), &["shards"]).is_err());
        assert!(Args::parse(&argv("--shards"), &["shards"]).is_err());
        let a = Args::parse(&argv("--shards x"), &["shards"]).unwrap();
        assert!(a.parsed::<u32>("shards").is_err());
        let a = Args::parse(&argv("--shards 4294967296"), &["shards"]).unwrap();
        let err = a.parsed::<u32>("shards").unwrap_err();
        assert!(err.contains("0 to 4294967295"), "{err}");
    }
}
