//! E-mail through a configurable SMTP server (lettre): STARTTLS or implicit TLS for real
//! servers, plain for a local relay, credentials from the environment.

use clap::{Parser, ValueEnum};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::Outcome;
use job_model::JobStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Security {
    /// No encryption (a relay on localhost or inside the cluster).
    None,
    /// Plain connection upgraded with STARTTLS (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

#[derive(Parser, Debug, Clone)]
pub struct EmailOptions {
    /// SMTP server; e-mail is off without one.
    #[arg(long, env = "MP3EDGE_SMTP_HOST")]
    pub smtp_host: Option<String>,
    #[arg(long, env = "MP3EDGE_SMTP_PORT", default_value_t = 587)]
    pub smtp_port: u16,
    #[arg(long, env = "MP3EDGE_SMTP_SECURITY", value_enum, default_value = "starttls")]
    pub smtp_security: Security,
    #[arg(long, env = "MP3EDGE_SMTP_USERNAME")]
    pub smtp_username: Option<String>,
    #[arg(long, env = "MP3EDGE_SMTP_PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<String>,
    /// Sender of the notifications.
    #[arg(long, env = "MP3EDGE_MAIL_FROM", default_value = "mp3edge <noreply@mp3edge.localhost>")]
    pub mail_from: String,
}

pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    pub fn from_options(options: &EmailOptions) -> anyhow::Result<Option<Mailer>> {
        let Some(host) = options.smtp_host.as_deref().filter(|h| !h.is_empty()) else { return Ok(None) };
        let mut builder = match options.smtp_security {
            Security::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            Security::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)?,
            Security::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)?,
        }
        .port(options.smtp_port)
        .timeout(Some(std::time::Duration::from_secs(15)));
        if let (Some(user), Some(password)) = (&options.smtp_username, &options.smtp_password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        let from = options.mail_from.parse().map_err(|e| anyhow::anyhow!("invalid --mail-from: {e}"))?;
        Ok(Some(Mailer { transport: builder.build(), from }))
    }

    /// Sends the message; `Ok` carries the server's reply code.
    pub async fn send(&self, outcome: &Outcome<'_>, public_url: &str) -> Result<String, String> {
        let job = outcome.job;
        let to: Mailbox = job.owner.parse().map_err(|e| format!("invalid recipient {:?}: {e}", job.owner))?;
        let (subject, body) = match job.status {
            JobStatus::Done => (
                format!("Your audio is ready: {}", outcome.output_name),
                format!(
                    "Hello,\n\n\"{}\" was converted to {}.\n\nDownload it (signed in):\n{}\n\nOr open {}/ and pick it from your jobs.\n\n-- mp3edge\n",
                    job.source_name, outcome.output_name, outcome.download_url, public_url
                ),
            ),
            _ => (
                format!("Conversion failed: {}", job.source_name),
                format!(
                    "Hello,\n\n\"{}\" could not be converted: {}\n\nJob:\n{}/jobs/{}\n\n-- mp3edge\n",
                    job.source_name,
                    job.error.as_deref().unwrap_or("unknown error"),
                    public_url,
                    job.id
                ),
            ),
        };
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| format!("could not build the message: {e}"))?;
        match self.transport.send(message).await {
            Ok(response) => Ok(format!("SMTP {}", response.code())),
            Err(e) => Err(format!("SMTP error: {e}")),
        }
    }
}
