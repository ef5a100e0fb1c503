//! Profiles: what a judge, a CI job or a developer wants, in a TOML file instead of a long
//! command line. A profile is a `Request` written as TOML (unknown keys are errors, named
//! with their line); `extends` puts a profile over the one it names with `Request::overlay`,
//! the same function that puts the command line over the profile.

use super::Request;
use crate::error::{Error, Result};

/// The built-in profiles: (name, TOML text).
pub const BUILTIN: &[(&str, &str)] = &[
    ("default", include_str!("../../profiles/default.toml")),
    ("judge", include_str!("../../profiles/judge.toml")),
    ("ci", include_str!("../../profiles/ci.toml")),
];

/// Parse one profile's text; `origin` names it in errors (with line and key).
pub fn parse(origin: &str, text: &str) -> Result<Request> {
    toml::from_str(text).map_err(|e| {
        let msg = e.to_string().replace('\n', " ").split_whitespace().collect::<Vec<_>>().join(" ");
        Error::invalid(format!("profile {origin}: {msg}"), "see profiles/README.md for the keys")
    })
}

/// Load a profile by built-in name or file path, following `extends` (at most 8 deep).
/// A profile that allows no system call by name gets `@basic`.
pub fn load(name_or_path: &str) -> Result<Request> {
    let mut r = load_depth(name_or_path, 0)?;
    if r.seccomp.allow.is_empty() {
        r.seccomp.allow.push("@basic".into());
    }
    Ok(r)
}

fn load_depth(name_or_path: &str, depth: usize) -> Result<Request> {
    if depth > 8 {
        return Err(Error::invalid(format!("profile {name_or_path}: 'extends' nests more than 8 deep (a cycle?)"), "break the cycle"));
    }
    let (origin, text) = match BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
        Some((n, t)) => (format!("{n} (built-in)"), t.to_string()),
        None if name_or_path.contains('/') || name_or_path.ends_with(".toml") => {
            let t = std::fs::read_to_string(name_or_path)
                .map_err(|e| Error::invalid(format!("--profile {name_or_path}: {e}"), "give a built-in name (ward profile list) or a readable file"))?;
            (name_or_path.to_string(), t)
        }
        None => {
            return Err(Error::invalid(
                format!("--profile {name_or_path}: no such built-in profile"),
                format!("use one of {} or a path to a .toml file", BUILTIN.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")),
            ));
        }
    };
    let p = parse(&origin, &text)?;
    let base = match &p.extends {
        Some(parent) => load_depth(parent, depth + 1)?,
        None => Request::default(),
    };
    Ok(base.overlay(&p))
}

/// The profile as TOML (`ward profile show`): parses back to the same request.
pub fn to_toml(r: &Request) -> String {
    toml::to_string_pretty(r).unwrap_or_else(|e| format!("# cannot print the profile: {e}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{BindAccess, MountSpec, NetMode, Size, Workdir};

    #[test]
    fn builtins_parse_and_print_back() {
        for (name, _) in BUILTIN {
            let p = load(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(parse("shown", &to_toml(&p)).unwrap(), p, "{name}");
        }
    }

    #[test]
    fn unknown_keys_name_line_and_key() {
        let e = parse("x.toml", "[tree]\nworkdir = \"none\"\nfrobnicate = 1\n").unwrap_err().to_string();
        assert!(e.contains("profile x.toml") && e.contains("line 3") && e.contains("frobnicate"), "{e}");
        let e = parse("x.toml", "[seccomp]\non_deny = \"explode\"\n").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("explode"), "{e}");
        let e = parse("x.toml", "[network]\nmode = \"carrier-pigeon\"\n").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("carrier-pigeon"), "{e}");
        let e = parse("x.toml", "[tree]\ntmp_size = \"lots\"\n").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("\"lots\" is not a size"), "{e}");
    }

    #[test]
    fn extends_overrides_scalars_and_appends_lists() {
        let base = parse("b", "[tree]\nworkdir = \"none\"\ntmp_size = \"1M\"\nro_bind = [{ src = \"/a\", dst = \"/a\" }]\n").unwrap();
        let child = parse("c", "[tree]\ntmp_size = \"2M\"\nro_bind = [{ src = \"/b\", dst = \"/b\" }]\n").unwrap();
        let m = Request::default().overlay(&base).overlay(&child);
        assert_eq!(m.tree.workdir, Some(Workdir::None));
        assert_eq!(m.tree.tmp_size, Some(Size(2 << 20)));
        assert_eq!(m.tree.mounts.len(), 2);
        assert!(matches!(&m.tree.mounts[1], MountSpec::Bind { src, access: BindAccess::ReadOnly, .. } if src.as_os_str() == "/b"));
    }

    #[test]
    fn values_are_typed() {
        let p = parse("x", "[limits]\noutput = \"1M\"\nmem = \"1G\"\ntime = 1.5\nwall_time = 3.0\n[network]\nmode = \"auto\"\n").unwrap();
        assert_eq!((p.limits.output, p.limits.mem, p.limits.time), (Some(Size(1 << 20)), Some(Size(1 << 30)), Some(1.5)));
        assert_eq!(p.network.mode, Some(NetMode::Auto));
        assert!(load("nope").unwrap_err().to_string().contains("no such built-in profile"));
    }
}
