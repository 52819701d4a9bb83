//! InitProducerId without a transactional id: a new producer id at epoch
//! 0 every time. The broker does the same: for a null transactional id
//! it "blindly" hands out a fresh id from its producer id manager, even
//! when the request names a current id and epoch (KIP-360's bump applies
//! to transactional producers; Java's `TransactionCoordinator
//! .handleInitProducerId`). Transactional ids are refused: transactions
//! are out of scope for the mock.

use skotch_protocol::error::ErrorCode;
use skotch_protocol::messages::{ApiKey, InitProducerIdRequest, InitProducerIdResponse};

use crate::broker::Broker;
use crate::fault;

/// The first producer id handed out (any non-negative id would do; a
/// recognisable one helps reading logs).
const FIRST_PRODUCER_ID: i64 = 1000;

/// Answer an InitProducerId request.
pub(crate) fn handle(broker: &Broker, req: &InitProducerIdRequest) -> InitProducerIdResponse {
    if let Some(code) = fault::injected_error(broker, ApiKey::InitProducerId, None) {
        return InitProducerIdResponse {
            error_code: code.code(),
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        };
    }
    if req.transactional_id.is_some() {
        return InitProducerIdResponse {
            error_code: ErrorCode::INVALID_REQUEST.code(),
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        };
    }
    let mut state = broker.shared.state();
    let id = FIRST_PRODUCER_ID + state.next_producer_id;
    state.next_producer_id += 1;
    state.producer_ids.insert(id);
    InitProducerIdResponse {
        throttle_time_ms: 0,
        error_code: 0,
        producer_id: id,
        producer_epoch: 0,
        ..Default::default()
    }
}

/// Summary for the request log.
pub(crate) fn summary(req: &InitProducerIdRequest) -> String {
    format!(
        "transactional_id={:?} producer_id={} epoch={}",
        req.transactional_id, req.producer_id, req.producer_epoch
    )
}
