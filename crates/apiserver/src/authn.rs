//! Authentication: which user a request comes from.
//!
//! As kube-apiserver, the server knows users by bearer token — the tokens of
//! a static token file (`--token-auth-file`) and its own admin token — and by
//! client certificate: a certificate signed by the client CA names the user
//! in its subject's common name and the groups in its organizations. Every
//! authenticated user is also in `system:authenticated`. A request with no
//! credentials is anonymous; a request with a token nobody owns is refused.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;

/// The group whose members every authorizer lets do anything.
pub const MASTERS_GROUP: &str = "system:masters";
/// The group of every authenticated user.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";
/// The group of anonymous requests.
pub const UNAUTHENTICATED_GROUP: &str = "system:unauthenticated";
/// The user name of anonymous requests.
pub const ANONYMOUS_USER: &str = "system:anonymous";
/// The user the server's own admin token authenticates as.
pub const ADMIN_USER: &str = "kstress-admin";

/// Who a request is from, as authorization sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    /// An authenticated user; `system:authenticated` is added to the groups.
    pub fn authenticated(name: &str, uid: &str, mut groups: Vec<String>) -> UserInfo {
        if !groups.iter().any(|g| g == AUTHENTICATED_GROUP) {
            groups.push(AUTHENTICATED_GROUP.to_string());
        }
        UserInfo {
            name: name.to_string(),
            uid: uid.to_string(),
            groups,
        }
    }

    pub fn anonymous() -> UserInfo {
        UserInfo {
            name: ANONYMOUS_USER.to_string(),
            uid: String::new(),
            groups: vec![UNAUTHENTICATED_GROUP.to_string()],
        }
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

/// Why the authentication setup could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AuthnError {
    #[error("cannot read the token file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("token file {path:?}, line {line}: {message}")]
    TokenFile {
        path: String,
        line: usize,
        message: String,
    },
    #[error("the client CA holds no usable certificate: {0}")]
    ClientCa(String),
}

/// The users of a static token file: CSV lines `token,user,uid` with an
/// optional fourth column of comma-separated groups (quoted when there is
/// more than one), the format of kube-apiserver's `--token-auth-file`.
#[derive(Debug, Default)]
pub struct TokenFile {
    users: HashMap<String, UserInfo>,
}

impl TokenFile {
    pub fn read(path: &Path) -> Result<TokenFile, AuthnError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| AuthnError::Read {
            path: shown.clone(),
            source,
        })?;
        TokenFile::parse(&text, &shown)
    }

    /// Parses the file's text; `origin` names it in errors. As upstream,
    /// blank lines and lines with an empty token are skipped and a repeated
    /// token belongs to its last line.
    pub fn parse(text: &str, origin: &str) -> Result<TokenFile, AuthnError> {
        let mut users = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() {
                continue;
            }
            let error = |message: String| AuthnError::TokenFile {
                path: origin.to_string(),
                line: index + 1,
                message,
            };
            let record = csv_record(line).map_err(|m| error(m.to_string()))?;
            if record.len() < 3 {
                return Err(error(format!(
                    "must have at least 3 columns (token, user name, user uid), found {}",
                    record.len()
                )));
            }
            if record[0].is_empty() {
                tracing::warn!(file = origin, line = index + 1, "skipping an empty token");
                continue;
            }
            let groups = match record.get(3) {
                Some(groups) => groups.split(',').map(str::to_string).collect(),
                None => Vec::new(),
            };
            let user = UserInfo::authenticated(&record[1], &record[2], groups);
            if users.insert(record[0].clone(), user).is_some() {
                tracing::warn!(file = origin, line = index + 1, "duplicate token");
            }
        }
        Ok(TokenFile { users })
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// Splits one CSV line into fields: commas separate, a field that starts
/// with `"` runs to its closing quote and `""` inside it is a quote.
fn csv_record(line: &str) -> Result<Vec<String>, &'static str> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("a quoted field is not closed"),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(_) => return Err("extraneous text after a quoted field"),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some('"') => return Err("a bare quote in an unquoted field"),
                    Some(c) => field.push(c),
                }
            }
            fields.push(field);
        }
    }
}

/// The outcome of authenticating one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authenticated {
    User(Arc<UserInfo>),
    /// No credentials at all.
    Anonymous,
    /// A bearer token no user owns: refused even where anonymous requests
    /// are allowed, as upstream does.
    InvalidToken,
}

/// Maps request credentials to users.
pub struct Authenticator {
    tokens: HashMap<String, Arc<UserInfo>>,
}

impl Authenticator {
    /// The admin token authenticates as [`ADMIN_USER`] in `system:masters`,
    /// so the embedded cluster's own clients keep full access under any
    /// authorization mode.
    pub fn new(admin_token: &str, token_file: TokenFile) -> Authenticator {
        let mut tokens: HashMap<String, Arc<UserInfo>> = token_file
            .users
            .into_iter()
            .map(|(token, user)| (token, Arc::new(user)))
            .collect();
        tokens.insert(
            admin_token.to_string(),
            Arc::new(UserInfo::authenticated(
                ADMIN_USER,
                "",
                vec![MASTERS_GROUP.to_string()],
            )),
        );
        Authenticator { tokens }
    }

    /// Authenticates by the `Authorization` header, then by the connection's
    /// verified client certificate. The header is read as upstream reads
    /// it: `Bearer <token>` with the scheme in any case; other schemes and
    /// an empty token count as no credentials.
    pub fn authenticate(
        &self,
        authorization: Option<&str>,
        certificate_user: Option<&Arc<UserInfo>>,
    ) -> Authenticated {
        let token = authorization.and_then(|value| {
            let mut parts = value.trim().split(' ');
            let scheme = parts.next()?;
            let token = parts.next()?;
            (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
        });
        match token {
            Some(token) => match self.tokens.get(token) {
                Some(user) => Authenticated::User(user.clone()),
                None => match certificate_user {
                    Some(user) => Authenticated::User(user.clone()),
                    None => Authenticated::InvalidToken,
                },
            },
            None => match certificate_user {
                Some(user) => Authenticated::User(user.clone()),
                None => Authenticated::Anonymous,
            },
        }
    }
}

/// The user a verified client certificate names: its subject's common name,
/// with its organizations as groups; `None` without a common name.
pub fn certificate_user(certificate: &CertificateDer<'_>) -> Option<UserInfo> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate.as_ref()).ok()?;
    let subject = parsed.subject();
    let name = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .filter(|cn| !cn.is_empty())?;
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .map(str::to_string)
        .collect();
    Some(UserInfo::authenticated(name, "", groups))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_file_lines() {
        let file = TokenFile::parse(
            "t1,alice,u1\n\n t2 ,bob,u2,\"dev,ops\"\n,nobody,u3\nt3,carol,u4,solo,extra\nt1,alice2,u5\n",
            "tokens.csv",
        )
        .unwrap();
        assert_eq!(file.len(), 3);
        assert_eq!(file.users["t1"].name, "alice2");
        let bob = &file.users[" t2 "];
        assert_eq!(bob.uid, "u2");
        assert_eq!(bob.groups, ["dev", "ops", AUTHENTICATED_GROUP]);
        assert_eq!(file.users["t3"].groups, ["solo", AUTHENTICATED_GROUP]);
    }

    #[test]
    fn token_file_errors_name_the_line() {
        let err = TokenFile::parse("t1,alice,u1\nt2,bob\n", "f").unwrap_err();
        assert_eq!(
            err.to_string(),
            "token file \"f\", line 2: must have at least 3 columns (token, user name, user uid), found 2"
        );
        assert!(TokenFile::parse("t,\"a,u", "f").is_err());
        assert!(TokenFile::parse("t,\"a\"x,u", "f").is_err());
    }

    #[test]
    fn csv_quotes() {
        assert_eq!(
            csv_record(r#"a,"b ""c"", d",e"#).unwrap(),
            ["a", "b \"c\", d", "e"]
        );
        assert_eq!(csv_record("a,,").unwrap(), ["a", "", ""]);
    }

    #[test]
    fn tokens_certificates_and_anonymous() {
        let file = TokenFile::parse("t1,alice,u1", "f").unwrap();
        let authn = Authenticator::new("admin", file);
        let Authenticated::User(admin) = authn.authenticate(Some("Bearer admin"), None) else {
            panic!("the admin token authenticates");
        };
        assert!(admin.in_group(MASTERS_GROUP));
        let Authenticated::User(alice) = authn.authenticate(Some(" bearer t1 "), None) else {
            panic!("a file token authenticates");
        };
        assert_eq!(alice.name, "alice");
        assert_eq!(
            authn.authenticate(Some("Bearer  t1"), None),
            Authenticated::Anonymous,
            "an empty token, as upstream splits the header"
        );
        assert_eq!(
            authn.authenticate(Some("Bearer nope"), None),
            Authenticated::InvalidToken
        );
        assert_eq!(
            authn.authenticate(Some("Basic YTpi"), None),
            Authenticated::Anonymous
        );
        let cert_user = Arc::new(UserInfo::authenticated("node-1", "", vec![]));
        assert_eq!(
            authn.authenticate(Some("Bearer nope"), Some(&cert_user)),
            Authenticated::User(cert_user.clone())
        );
        assert_eq!(authn.authenticate(None, None), Authenticated::Anonymous);
    }
}
