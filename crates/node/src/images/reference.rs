//! Image reference parsing with the rules of `distribution/reference`'s
//! `ParseNormalizedNamed`, which the kubelet uses (through
//! `parsers.ParseImageName`) to default tags and pull policies.
//!
//! The grammar is `[domain[:port]/]path[:tag][@digest]`. A first path
//! component is a registry host when it contains `.` or `:`, is `localhost`,
//! or has upper-case letters; otherwise the image lives on Docker Hub and
//! single-component names gain the `library/` namespace. Only the parse
//! result is normalized; the image string the runtime receives keeps the
//! user's spelling, so `busybox` becomes `busybox:latest`, not
//! `docker.io/library/busybox:latest`.

use std::sync::LazyLock;

use regex::Regex;

/// The tag assumed when an image names neither a tag nor a digest.
pub const DEFAULT_IMAGE_TAG: &str = "latest";

const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const LOCALHOST: &str = "localhost";
const REPOSITORY_NAME_MAX_LEN: usize = 255;

/// Why a string is not a valid image reference; messages match upstream's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// A bare 64-hex-digit string would be ambiguous with an image ID.
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexIdentifier(String),
    /// The repository path has upper-case letters.
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    UppercaseRepository(String),
    /// The reference only parses once lower-cased.
    #[error("repository name must be lowercase")]
    NameContainsUppercase,
    /// The reference does not match the grammar.
    #[error("invalid reference format")]
    InvalidFormat,
    /// The repository path is longer than 255 characters.
    #[error("repository name must not be more than {REPOSITORY_NAME_MAX_LEN} characters")]
    NameTooLong,
    /// The digest algorithm is not one of sha256, sha384, sha512.
    #[error("unsupported digest algorithm")]
    UnsupportedDigest,
    /// The digest has the wrong number of hex digits for its algorithm.
    #[error("invalid checksum digest length")]
    InvalidDigestLength,
    /// The digest's hex digits are not lower-case.
    #[error("invalid checksum digest format")]
    InvalidDigestFormat,
}

/// An image string that could not be parsed, as `parsers.ParseImageName` reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("couldn't parse image name {image:?}: {reason}")]
pub struct InvalidImageName {
    image: String,
    reason: ReferenceError,
}

/// The parts of an image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageName {
    /// Fully qualified repository, e.g. `docker.io/library/busybox`.
    pub repository: String,
    /// The explicit tag, or [`DEFAULT_IMAGE_TAG`] when there is neither tag nor digest.
    pub tag: Option<String>,
    /// The digest, e.g. `sha256:…`.
    pub digest: Option<String>,
}

/// Parses `image` like upstream's `parsers.ParseImageName`.
pub fn parse_image_name(image: &str) -> Result<ImageName, InvalidImageName> {
    let mut name = parse_normalized_named(image).map_err(|reason| InvalidImageName {
        image: image.to_owned(),
        reason,
    })?;
    if name.tag.is_none() && name.digest.is_none() {
        name.tag = Some(DEFAULT_IMAGE_TAG.to_owned());
    }
    Ok(name)
}

/// Appends `:latest` to an image that has neither a tag nor a digest,
/// leaving the rest of the string (registry, port, path) exactly as given.
pub fn apply_default_image_tag(image: &str) -> Result<String, InvalidImageName> {
    let name = parse_image_name(image)?;
    match (&name.tag, &name.digest) {
        (Some(tag), None) if !image.ends_with(&format!(":{tag}")) => Ok(format!("{image}:{tag}")),
        _ => Ok(image.to_owned()),
    }
}

fn parse_normalized_named(s: &str) -> Result<ImageName, ReferenceError> {
    if ANCHORED_IDENTIFIER.is_match(s) {
        return Err(ReferenceError::HexIdentifier(s.to_owned()));
    }
    let (domain, remainder) = split_docker_domain(s);
    let remote = remainder
        .split_once(':')
        .map_or(remainder.as_str(), |(remote, _)| remote);
    if remote.to_lowercase() != remote {
        return Err(ReferenceError::UppercaseRepository(remote.to_owned()));
    }
    parse(&format!("{domain}/{remainder}"))
}

/// Splits off the registry host, defaulting to Docker Hub.
fn split_docker_domain(name: &str) -> (String, String) {
    let (domain, remainder) = match name.split_once('/') {
        None => {
            return (
                DEFAULT_DOMAIN.to_owned(),
                format!("{OFFICIAL_REPO_PREFIX}{name}"),
            );
        }
        Some((LEGACY_DEFAULT_DOMAIN, rest)) => (DEFAULT_DOMAIN, rest),
        Some((first, rest))
            if first == LOCALHOST
                || first.contains(['.', ':'])
                || first.to_lowercase() != first =>
        {
            (first, rest)
        }
        Some(_) => (DEFAULT_DOMAIN, name),
    };
    let remainder = if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        format!("{OFFICIAL_REPO_PREFIX}{remainder}")
    } else {
        remainder.to_owned()
    };
    (domain.to_owned(), remainder)
}

fn parse(s: &str) -> Result<ImageName, ReferenceError> {
    let Some(captures) = REFERENCE.captures(s) else {
        let lower = s.to_lowercase();
        return Err(if lower != s && REFERENCE.is_match(&lower) {
            ReferenceError::NameContainsUppercase
        } else {
            ReferenceError::InvalidFormat
        });
    };
    let repository = captures.get(1).map_or("", |m| m.as_str());
    let path = ANCHORED_NAME
        .captures(repository)
        .and_then(|name| name.get(2))
        .map_or(repository, |path| path.as_str());
    if path.len() > REPOSITORY_NAME_MAX_LEN {
        return Err(ReferenceError::NameTooLong);
    }
    let digest = captures.get(3).map(|m| m.as_str());
    if let Some(digest) = digest {
        validate_digest(digest)?;
    }
    Ok(ImageName {
        repository: repository.to_owned(),
        tag: captures.get(2).map(|m| m.as_str().to_owned()),
        digest: digest.map(str::to_owned),
    })
}

/// Checks a digest the way go-digest does for the algorithms the kubelet links in.
fn validate_digest(digest: &str) -> Result<(), ReferenceError> {
    let Some((algorithm, encoded)) = digest.split_once(':') else {
        return Err(ReferenceError::InvalidDigestFormat);
    };
    let hex_len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(ReferenceError::UnsupportedDigest),
    };
    if encoded.len() != hex_len {
        return Err(ReferenceError::InvalidDigestLength);
    }
    if !encoded
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(ReferenceError::InvalidDigestFormat);
    }
    Ok(())
}

const ALPHANUMERIC: &str = "[a-z0-9]+";
const SEPARATOR: &str = "(?:[._]|__|[-]+)";
const DOMAIN_NAME_COMPONENT: &str = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const IPV6_ADDRESS: &str = r"\[(?:[a-fA-F0-9:]+)\]";
const OPTIONAL_PORT: &str = "(?::[0-9]+)?";
const TAG: &str = "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}";
const DIGEST: &str = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][[:xdigit:]]{32,}";

fn domain_and_port() -> String {
    let domain_name = format!(r"{DOMAIN_NAME_COMPONENT}(?:\.{DOMAIN_NAME_COMPONENT})*");
    format!("(?:{domain_name}|{IPV6_ADDRESS}){OPTIONAL_PORT}")
}

fn remote_name() -> String {
    let path_component = format!("{ALPHANUMERIC}(?:{SEPARATOR}{ALPHANUMERIC})*");
    format!("{path_component}(?:/{path_component})*")
}

fn compile(pattern: &str) -> Regex {
    Regex::new(pattern).expect("image reference grammar is a valid regular expression")
}

static REFERENCE: LazyLock<Regex> = LazyLock::new(|| {
    let name = format!("(?:{}/)?{}", domain_and_port(), remote_name());
    compile(&format!("^({name})(?::({TAG}))?(?:@({DIGEST}))?$"))
});

static ANCHORED_NAME: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(
        "^(?:({})/)?({})$",
        domain_and_port(),
        remote_name()
    ))
});

static ANCHORED_IDENTIFIER: LazyLock<Regex> = LazyLock::new(|| compile("^[a-f0-9]{64}$"));

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn defaulted(image: &str) -> String {
        apply_default_image_tag(image).unwrap_or_else(|err| panic!("{image}: {err}"))
    }

    fn parse_error(image: &str) -> String {
        match apply_default_image_tag(image) {
            Ok(image) => panic!("{image} parsed"),
            Err(err) => err.to_string(),
        }
    }

    // The three cases of upstream's TestApplyDefaultImageTag.
    #[test]
    fn apply_default_image_tag_root() {
        assert_eq!(defaulted("root"), "root:latest");
    }

    #[test]
    fn apply_default_image_tag_root_tag() {
        assert_eq!(defaulted("root:tag"), "root:tag");
    }

    #[test]
    fn apply_default_image_tag_root_sha() {
        let image = format!("root@{SHA}");
        assert_eq!(defaulted(&image), image);
    }

    #[test]
    fn apply_default_image_tag_keeps_registry_and_port() {
        assert_eq!(defaulted("localhost:5000/foo"), "localhost:5000/foo:latest");
        assert_eq!(defaulted("localhost/foo"), "localhost/foo:latest");
        assert_eq!(
            defaulted("registry.k8s.io/pause"),
            "registry.k8s.io/pause:latest"
        );
        assert_eq!(
            defaulted("registry.k8s.io:443/pause:3.10"),
            "registry.k8s.io:443/pause:3.10"
        );
        assert_eq!(
            defaulted("[::1]:5000/team/app"),
            "[::1]:5000/team/app:latest"
        );
        assert_eq!(defaulted("10.0.0.1:5000/app"), "10.0.0.1:5000/app:latest");
    }

    #[test]
    fn apply_default_image_tag_leaves_explicit_latest_and_tag_with_digest() {
        assert_eq!(defaulted("busybox:latest"), "busybox:latest");
        let image = format!("example.com/ns/img:1.0@{SHA}");
        assert_eq!(defaulted(&image), image);
    }

    #[test]
    fn parse_image_name_normalizes_docker_hub_names() {
        let name = parse_image_name("busybox").unwrap();
        assert_eq!(name.repository, "docker.io/library/busybox");
        assert_eq!(name.tag.as_deref(), Some("latest"));
        assert_eq!(name.digest, None);
        let name = parse_image_name("index.docker.io/team/app:v1").unwrap();
        assert_eq!(name.repository, "docker.io/team/app");
        assert_eq!(name.tag.as_deref(), Some("v1"));
        let name = parse_image_name(&format!("quay.io/team/app@{SHA}")).unwrap();
        assert_eq!(name.repository, "quay.io/team/app");
        assert_eq!(name.tag, None);
        assert_eq!(name.digest.as_deref(), Some(SHA));
    }

    #[test]
    fn invalid_image_names_report_upstream_messages() {
        assert_eq!(
            parse_error("Foo"),
            r#"couldn't parse image name "Foo": invalid reference format: repository name (library/Foo) must be lowercase"#
        );
        assert_eq!(
            parse_error(""),
            r#"couldn't parse image name "": invalid reference format"#
        );
        assert_eq!(
            parse_error("root@sha256:abc"),
            r#"couldn't parse image name "root@sha256:abc": invalid reference format"#
        );
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            parse_error(hex),
            format!(
                "couldn't parse image name {hex:?}: invalid repository name ({hex}), cannot specify 64-byte hexadecimal strings"
            )
        );
        assert!(
            parse_error("root@md5:0123456789abcdef0123456789abcdef")
                .ends_with("unsupported digest algorithm")
        );
        assert!(
            parse_error("root@sha256:0123456789abcdef0123456789abcdef")
                .ends_with("invalid checksum digest length")
        );
        assert!(
            parse_error(&format!(
                "root@{}",
                SHA.to_uppercase().replace("SHA", "sha")
            ))
            .ends_with("invalid checksum digest format")
        );
        assert!(
            parse_error(&format!("example.com/{}", "a".repeat(256)))
                .ends_with("must not be more than 255 characters")
        );
        assert!(parse_error("example.com/app:-bad").ends_with("invalid reference format"));
    }
}
