//! GetDefaultAccount's hot path: the answer of a cached default is encoded once and
//! sent as those bytes on every call after, instead of converting the account (its
//! config document becomes a protobuf Struct, a dozen strings are copied) and encoding
//! it per call.
//!
//! [`DefaultAnswerService`] sits between the authentication interceptor and the
//! generated `AccountServiceServer`, and serves that one method itself through tonic's
//! own `Grpc::unary`, with a codec that writes the bytes prost encoded for the first
//! call (`PassThroughEncoder`). Every other method goes on to the generated server.
//! GetDefaultAccount has one handler, [`answer`]: the generated trait method, which the
//! wire never reaches, decodes the same bytes for whoever calls the trait directly.
//!
//! The bytes are kept beside the default cache's entry (`views/defaults/answers.rs`), one
//! answer per view (admins see the verify token, the others do not), and go with it
//! when the scope's defaults change.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes};
use patchbay_sdk::codec::InvalidArgumentDecoder;
use patchbay_sdk::proto::{self, account_service_server::AccountServiceServer};
use prost::Message;
use tonic::codec::{Codec, EncodeBuf, Encoder, SingleMessageCompressionOverride};
use tonic::server::{NamedService, UnaryService};
use tonic::{Request, Response, Status};

use super::account_service::AccountGrpc;
use super::auth::caller_of;
use super::call::Call;
use super::compression::{for_encoded, with_compression};
use super::convert::account::{account_to_proto, division_filter};
use super::convert::required_channel;
use crate::app::Accounts;
use crate::domain::Channel;
use crate::domain::fallbacks;
use crate::domain::ids::now;
use crate::views::defaults::{CachedDefault, View};

const PATH: &str = "/patchbay.v1.AccountService/GetDefaultAccount";
type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// An answer prost has already encoded.
pub struct Encoded(Bytes);

/// The answer as the generated handler would encode it: the account the scope sends
/// from (`domain::fallbacks::served`: the default, or the first fallback that can send
/// in its place), unless the caller asked for the default alone.
fn encode(accounts: &Accounts, record: &CachedDefault, view: View) -> Vec<u8> {
    let default = &record.account;
    let served = if view.no_fallback {
        None
    } else {
        fallbacks::served(default, &record.fallbacks, now())
    };
    let (account, served_by_fallback, fallback_reason) =
        match served.and_then(|at| record.fallbacks.get(at)) {
            Some(fallback) => (
                fallback.clone(),
                true,
                fallbacks::fallback_reason(default, now()),
            ),
            None => (default.clone(), false, Vec::new()),
        };
    proto::GetDefaultAccountResponse {
        served_by_fallback,
        fallback_reason,
        account: Some(account_to_proto(accounts.present_as(account, view.admin))),
    }
    .encode_to_vec()
}

/// The account service, with GetDefaultAccount answered from the kept answers.
#[derive(Clone)]
pub struct DefaultAnswerService {
    inner: AccountServiceServer<AccountGrpc>,
    handler: Arc<Handler>,
    max_decoding_message_size: usize,
}

struct Handler {
    accounts: Accounts,
}

impl DefaultAnswerService {
    pub fn new(
        inner: AccountServiceServer<AccountGrpc>,
        accounts: Accounts,
        max_decoding_message_size: usize,
    ) -> Self {
        Self {
            inner,
            handler: Arc::new(Handler { accounts }),
            max_decoding_message_size,
        }
    }
}

impl NamedService for DefaultAnswerService {
    const NAME: &'static str = <AccountServiceServer<AccountGrpc> as NamedService>::NAME;
}

impl<B> tower::Service<http::Request<B>> for DefaultAnswerService
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        tower::Service::<http::Request<B>>::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != PATH {
            return Box::pin(self.inner.call(request));
        }
        // A caller that offers no encoding gets nothing compressed: its answers need
        // no override (one allocation less on the hot path).
        let offers = request.headers().contains_key("grpc-accept-encoding");
        let handler = Unary(self.handler.clone(), offers);
        let mut grpc = with_compression!(tonic::server::Grpc::new(AnswerCodec))
            .apply_max_message_size_config(Some(self.max_decoding_message_size), None);
        Box::pin(async move { Ok(grpc.unary(handler, request).await) })
    }
}

/// The handler, and whether the caller offered to take compressed answers.
struct Unary(Arc<Handler>, bool);

impl UnaryService<proto::GetDefaultAccountRequest> for Unary {
    type Response = Encoded;
    type Future = BoxFuture<Result<Response<Encoded>, Status>>;

    fn call(&mut self, request: Request<proto::GetDefaultAccountRequest>) -> Self::Future {
        let (handler, offers) = (self.0.clone(), self.1);
        Box::pin(async move { handler.get_default_account(request, offers).await })
    }
}

impl Handler {
    /// GetDefaultAccount, answered with the kept bytes.
    async fn get_default_account(
        &self,
        mut request: Request<proto::GetDefaultAccountRequest>,
        offers: bool,
    ) -> Result<Response<Encoded>, Status> {
        let (bytes, admin) = answer(&self.accounts, &mut request).await?;
        // An admin's answer shows the verify token in clear: never compressed.
        let compression = if admin {
            SingleMessageCompressionOverride::Disable
        } else {
            for_encoded(bytes.len())
        };
        let mut response = Response::new(Encoded(bytes));
        if offers && compression == SingleMessageCompressionOverride::Disable {
            response.extensions_mut().insert(compression);
        }
        Ok(response)
    }
}

/// GetDefaultAccount's one answer: the bytes kept for the caller's view of its scope's
/// default (the division's, else the workspace's), and whether the caller is an
/// admin. The generated trait method decodes the same bytes, so both ways in answer
/// alike (only `DefaultAnswerService` is on the wire).
pub(super) async fn answer(
    accounts: &Accounts,
    request: &mut Request<proto::GetDefaultAccountRequest>,
) -> Result<(Bytes, bool), Status> {
    let (caller, channel, division, no_fallback) = asked(request)?;
    let record = accounts.default_record(&caller, channel, division).await?;
    let admin = caller.sees_setup_secrets();
    // Without fallbacks, the default alone is the answer as served: one kept answer.
    let no_fallback = no_fallback && !record.fallbacks.is_empty();
    let view = View { admin, no_fallback };
    let bytes = record
        .answers
        .get_or_encode(view, || encode(accounts, &record, view));
    Ok((bytes, admin))
}

/// Who asks GetDefaultAccount, of which channel and division, and whether for the
/// default alone.
fn asked(
    request: &mut Request<proto::GetDefaultAccountRequest>,
) -> Result<(Call, Channel, Option<String>, bool), Status> {
    let caller = caller_of(request)?;
    let request = request.get_mut();
    let channel = required_channel(request.channel, "channel")?;
    let division = division_filter(std::mem::take(&mut request.division_id));
    Ok((caller, channel, division, request.no_fallback))
}

/// Decodes the request as every Patchbay service does; encodes nothing itself.
#[derive(Default)]
struct AnswerCodec;

impl Codec for AnswerCodec {
    type Encode = Encoded;
    type Decode = proto::GetDefaultAccountRequest;
    type Encoder = PassThroughEncoder;
    type Decoder = InvalidArgumentDecoder<proto::GetDefaultAccountRequest>;

    fn encoder(&mut self) -> PassThroughEncoder {
        PassThroughEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        use patchbay_sdk::codec::PatchbayCodec;
        PatchbayCodec::<proto::GetDefaultAccountResponse, Self::Decode>::default().decoder()
    }
}

/// Writes the bytes prost encoded.
struct PassThroughEncoder;

impl Encoder for PassThroughEncoder {
    type Item = Encoded;
    type Error = Status;

    fn encode(&mut self, item: Encoded, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item.0);
        Ok(())
    }
}
