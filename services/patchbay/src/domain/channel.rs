//! The messaging channels of the spec.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    Whatsapp,
    Instagram,
    Messenger,
    Email,
    Sms,
    Chat,
    Push,
    InApp,
}

impl Channel {
    pub const ALL: [Channel; 8] = [
        Channel::Whatsapp,
        Channel::Instagram,
        Channel::Messenger,
        Channel::Email,
        Channel::Sms,
        Channel::Chat,
        Channel::Push,
        Channel::InApp,
    ];

    /// The name stored in the database and used in webhook URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Whatsapp => "whatsapp",
            Channel::Instagram => "instagram",
            Channel::Messenger => "messenger",
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Chat => "chat",
            Channel::Push => "push",
            Channel::InApp => "in_app",
        }
    }

    pub fn parse(name: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_channel_round_trips_through_its_name() {
        for channel in Channel::ALL {
            assert_eq!(Channel::parse(channel.as_str()), Some(channel));
        }
        assert_eq!(Channel::parse("fax"), None);
    }
}
