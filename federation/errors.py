from registry.errors import Conflict, DomainError, InvalidInput, NotFound, PermissionDenied


class PeerNotFound(NotFound):
    code = "peer_not_found"
    default_detail = "No such peer registry."


class PeerAlreadyRegistered(Conflict):
    code = "peer_already_registered"
    default_detail = "A peer with this origin is already registered."


class PeerInvalid(InvalidInput):
    code = "peer_invalid"
    default_detail = "The peer's origin, keys or URLs are not valid."


class PeerKeyNameMismatch(PeerInvalid):
    """A checkpoint key must be named after the origin it signs for (another field)."""

    code = "peer_key_name_mismatch"
    default_detail = "The peer's log key is not named after its origin."


class PeerKeyIdMismatch(PeerInvalid):
    """A verifier key whose key id is not the hash of its name, type and key (a checksum)."""

    code = "peer_key_id_mismatch"
    default_detail = "The key id of the peer's verifier key does not match the key."


class PeerIsSelf(PeerInvalid):
    """The peer's origin or witness key name is this registry's own (our settings)."""

    code = "peer_is_self"
    default_detail = "That is this registry itself."


class PeerWitnessNameTaken(PeerInvalid):
    """Cosignatures count once per witness name, so two peers must not share one."""

    code = "peer_witness_name_taken"
    default_detail = "Another peer's witness key has this name."


class PeerStatusConflict(Conflict):
    code = "peer_status_conflict"
    default_detail = "The peer is not in a state that allows this."


class PeerSignatureInvalid(PermissionDenied):
    code = "peer_signature_invalid"
    default_detail = "The request is not signed by a registered, active peer."


class MirrorNotFound(NotFound):
    code = "mirror_not_found"
    default_detail = "This registry keeps no mirror of that origin (yet)."


class MirrorEntryNotFound(NotFound):
    code = "mirror_entry_not_found"
    default_detail = "The mirror holds no entry with this sequence number (yet)."


class MirrorProofUnavailable(InvalidInput):
    code = "mirror_proof_unavailable"
    default_detail = "No such proof in the mirror: check the sequence number and tree sizes."


class AnchoredCheckpointNotFound(NotFound):
    code = "anchored_checkpoint_not_found"
    default_detail = "No checkpoint has reached the cosignature quorum yet."


# --- The tlog-witness protocol (POST /add-checkpoint). Its responses are plain text with
# the status codes C2SP tlog-witness prescribes; the codes below name them in logs.


class WitnessError(DomainError):
    code = "witness_error"


class WitnessRequestMalformed(WitnessError):
    code = "witness_request_malformed"
    status = 400
    default_detail = "The add-checkpoint request is malformed."


class WitnessRequestTooLarge(WitnessError):
    code = "witness_request_too_large"
    status = 413
    default_detail = "The add-checkpoint request is too large."


class WitnessLogUnknown(WitnessError):
    code = "witness_log_unknown"
    status = 404
    default_detail = "This witness does not witness that origin."


class WitnessSignatureUntrusted(WitnessError):
    code = "witness_signature_untrusted"
    status = 403
    default_detail = "No signature on the checkpoint verifies against the log's trusted key."


class WitnessLogFlagged(WitnessError):
    code = "witness_log_flagged"
    status = 403
    default_detail = "This log is flagged for misbehaviour; it is no longer cosigned."


class WitnessOldSizeMismatch(WitnessError):
    """409 with the latest cosigned size as `text/x.tlog.size`."""

    code = "witness_old_size_mismatch"
    status = 409
    default_detail = "The old size is not the size of the latest cosigned checkpoint."

    def __init__(self, detail: str | None = None, *, latest_size: int, **extra) -> None:
        super().__init__(detail, latest_size=latest_size, **extra)
        self.latest_size = latest_size


class WitnessCheckpointConflict(WitnessError):
    """409 with the checkpoint already cosigned for that size as the body."""

    code = "witness_checkpoint_conflict"
    status = 409
    default_detail = "A different checkpoint was already cosigned for this tree size."

    def __init__(self, detail: str | None = None, *, conflicting_note: str, **extra) -> None:
        super().__init__(detail, **extra)
        self.conflicting_note = conflicting_note


class WitnessProofInvalid(WitnessError):
    code = "witness_proof_invalid"
    status = 422
    default_detail = "The consistency proof does not verify."


class TransferPackageInvalid(DomainError):
    """A transfer package that does not verify: nothing is stored, nothing is receipted."""

    code = "transfer_package_invalid"
    status = 422
    default_detail = "The transfer package does not verify."


class TransferPackageTooLarge(DomainError):
    code = "transfer_package_too_large"
    status = 413
    default_detail = "The transfer package is larger than this registry accepts."


class TransferPeerNotPartner(PermissionDenied):
    code = "transfer_peer_not_partner"
    default_detail = "This registry is not registered here as a trading partner."
