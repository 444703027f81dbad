"""Facts about the official Genesys models, copied by hand from the SDK's ``attribute_map``s.

Source: MyPureCloud/platform-client-sdk-python, ``build/PureCloudPlatformClientV2/models/*.py``
(the JSON names, and ``allowed_values`` for enums). Tests must not import the SDK (it is only in
the ``bench`` extra), so the facts live here. ``required`` is what a client may rely on finding:
the SDK marks nothing required, so it holds the fields the contract names for each answer.

``check(value, model)`` lists every way ``value`` breaks the model: a key the model does not
have, a null anywhere, a missing required field, a string field that is not a string, an enum
value the model does not list.
"""

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Model:
    """One model: its JSON fields, and what is known about some of them."""

    fields: frozenset[str]
    required: frozenset[str] = frozenset()
    strings: frozenset[str] = frozenset()
    enums: dict[str, frozenset[str]] = field(default_factory=dict)
    nested: dict[str, str] = field(default_factory=dict)
    lists: dict[str, str] = field(default_factory=dict)
    string_maps: frozenset[str] = frozenset()


def _m(
    fields: str,
    *,
    required: str = "",
    strings: str = "",
    enums: dict[str, str] | None = None,
    nested: dict[str, str] | None = None,
    lists: dict[str, str] | None = None,
    string_maps: str = "",
) -> Model:
    return Model(
        fields=frozenset(fields.split()),
        required=frozenset(required.split()),
        strings=frozenset(strings.split()),
        enums={k: frozenset(v.split()) for k, v in (enums or {}).items()},
        nested=nested or {},
        lists=lists or {},
        string_maps=frozenset(string_maps.split()),
    )


MODELS: dict[str, Model] = {
    "ErrorBody": _m(
        "message code status entityId entityName messageWithParams messageParams contextId "
        "details errors limit",
        required="message code status contextId",
        strings="message code entityId entityName messageWithParams contextId",
        lists={"details": "Detail", "errors": "ErrorBody"},
        nested={"limit": "Limit"},
        string_maps="messageParams",
    ),
    "Detail": _m("errorCode fieldName entityId entityName", strings="errorCode fieldName"),
    "Limit": _m("key namespace value", strings="key namespace"),
    "CreateCallResponse": _m("id name selfUri", required="id selfUri", strings="id name selfUri"),
    "CallConversation": _m(
        "id name participants otherMediaUris recordingState maxParticipants securePause selfUri",
        required="id participants selfUri",
        strings="id name selfUri",
        enums={"recordingState": "none active paused"},
        lists={"participants": "CallMediaParticipant"},
    ),
    "CallMediaParticipant": _m(
        "id name address startTime connectedTime endTime startHoldTime purpose state direction "
        "disconnectType held wrapupRequired wrapupPrompt mediaRoles user queue team attributes "
        "errorInfo script wrapupTimeoutMs wrapupSkipped alertingTimeoutMs provider "
        "externalContact externalOrganization wrapup peer flaggedReason journeyContext "
        "conversationRoutingData startAcwTime endAcwTime muted confined recording "
        "recordingState group ani dnis documentId faxStatus monitoredParticipantId "
        "coachedParticipantId bargedParticipantId consultParticipantId uuiData bargedTime "
        "securePause disposition",
        required="id purpose state",
        strings="id name address startTime connectedTime endTime purpose state direction "
        "disconnectType provider ani dnis",
        enums={
            "state": "alerting dialing contacting offering connected disconnected terminated "
            "converting uploading transmitting none",
            "direction": "inbound outbound",
            # The SDK's CallMediaParticipant list lacks "timeout"; the contract and the
            # notification payloads carry it (UNCONFIRMED), so it is allowed here.
            "disconnectType": "endpoint endpoint.donotdisturb client system transfer "
            "transfer.conference transfer.consult transfer.donotdisturb transfer.forward "
            "transfer.noanswer transfer.notavailable transport.failure error peer other spam "
            "timeout",
            "purpose": "agent user customer external acd ivr",
        },
        nested={"user": "DomainEntityRef", "errorInfo": "ErrorInfo"},
        string_maps="attributes",
    ),
    "DomainEntityRef": _m("id name selfUri", required="id", strings="id name selfUri"),
    "ErrorInfo": _m(
        "status code entityId entityName message messageWithParams messageParams contextId "
        "details errors limit",
        required="code",
        strings="code message",
    ),
    "User": _m(
        "id name division chat department email primaryContactInfo addresses state title "
        "username manager images version certifications biography employerInfo preferredName "
        "routingStatus presence integrationPresence conversationSummary outOfOffice "
        "geolocation station authorization profileSkills locations groups team skills "
        "languages acdAutoAnswer languagePreference lastTokenIssued dateLastLogin selfUri",
        required="id name state selfUri",
        strings="id name department email state title username selfUri",
        enums={"state": "active inactive deleted"},
        nested={
            "division": "Division",
            "presence": "UserPresence",
            "routingStatus": "RoutingStatus",
            "station": "UserStations",
        },
    ),
    "Division": _m("id name selfUri", required="id selfUri", strings="id name selfUri"),
    "AuthzDivision": _m(
        "id name description homeDivision objectCounts selfUri",
        required="id selfUri",
        strings="id name description selfUri",
    ),
    "UserPresence": _m(
        "id name source primary presenceDefinition message modifiedDate selfUri",
        required="presenceDefinition",
        strings="id name source message modifiedDate selfUri",
        nested={"presenceDefinition": "PresenceDefinition"},
    ),
    "PresenceDefinition": _m(
        "id systemPresence selfUri", required="systemPresence", strings="id systemPresence selfUri"
    ),
    "RoutingStatus": _m(
        "userId status startTime",
        required="status",
        strings="userId status startTime",
        enums={"status": "OFF_QUEUE IDLE INTERACTING NOT_RESPONDING COMMUNICATING"},
    ),
    "UserStations": _m(
        "associatedStation effectiveStation defaultStation lastAssociatedStation",
        nested={
            "associatedStation": "UserStation",
            "effectiveStation": "UserStation",
            "defaultStation": "UserStation",
            "lastAssociatedStation": "UserStation",
        },
    ),
    "UserStation": _m(
        "id name type associatedUser associatedDate defaultUser providerInfo webRtcCallAppearances",
        required="id",
        strings="id name type associatedDate",
        nested={"associatedUser": "User.ref"},
        string_maps="providerInfo",
    ),
    # A User that only names its id, as UserStation.associatedUser does.
    "User.ref": _m("id name selfUri", required="id", strings="id name selfUri"),
    "UsersSearchResponse": _m(
        "total pageCount pageSize pageNumber previousPage currentPage nextPage types results",
        required="total results",
        strings="previousPage currentPage nextPage",
        lists={"results": "User"},
    ),
    "Channel": _m(
        "connectUri id expires", required="connectUri id", strings="connectUri id expires"
    ),
    "ChannelEntityListing": _m(
        "entities pageSize pageNumber total firstUri selfUri nextUri previousUri lastUri pageCount",
        required="entities",
        lists={"entities": "Channel"},
    ),
    "ChannelTopic": _m("id selfUri", required="id", strings="id selfUri"),
    "ChannelTopicEntityListing": _m(
        "entities", required="entities", lists={"entities": "ChannelTopic"}
    ),
    "CallFrame": _m(
        "topicName version eventBody metadata",
        required="topicName eventBody",
        strings="topicName version",
        nested={"eventBody": "CallConversation", "metadata": "FrameMetadata"},
    ),
    "FrameMetadata": _m("CorrelationId", strings="CorrelationId"),
    "AnalyticsConversationQueryResponse": _m(
        "aggregations conversations totalHits",
        required="totalHits",
        lists={"conversations": "AnalyticsConversation"},
    ),
    # AnalyticsConversationWithoutAttributes, plus the participants' attributes the emulator
    # may add (AnalyticsParticipant has them).
    "AnalyticsConversation": _m(
        "conversationId conversationStart conversationEnd mediaStatsMinConversationMos "
        "mediaStatsMinConversationRFactor originatingDirection evaluations surveys divisionIds "
        "participants",
        required="conversationId conversationStart participants",
        strings="conversationId conversationStart conversationEnd originatingDirection",
        enums={"originatingDirection": "inbound outbound"},
        lists={"participants": "AnalyticsParticipant"},
    ),
    "AnalyticsParticipant": _m(
        "externalContactId externalOrganizationId flaggedReason participantId participantName "
        "purpose teamId userId sessions attributes",
        required="participantId purpose sessions",
        strings="participantId participantName purpose userId",
        enums={
            "purpose": "acd agent api botflow campaign customer dialer external fax group "
            "inbound ivr manual outbound station user voicemail workflow"
        },
        lists={"sessions": "AnalyticsSession"},
        string_maps="attributes",
    ),
    "AnalyticsSession": _m(
        "activeSkillIds acwSkipped addressFrom addressOther addressSelf addressTo "
        "agentAssistantId agentBullseyeRing agentOwned ani assignerId authenticated "
        "bargedParticipantId bcc callbackNumbers callbackScheduledTime callbackUserName cc "
        "cleared coachedParticipantId cobrowseRole cobrowseRoomId deliveryStatus "
        "deliveryStatusChangeDate destinationAddresses direction dispositionAnalyzer "
        "dispositionName dnis edgeId eligibleAgentCounts extendedDeliveryStatus flowInType "
        "flowOutType journeyActionId journeyActionMapId journeyActionMapVersion "
        "journeyCustomerId journeyCustomerIdType journeyCustomerSessionId "
        "journeyCustomerSessionIdType mediaBridgeId mediaCount mediaType messageType "
        "monitoredParticipantId outboundCampaignId outboundContactId outboundContactListId "
        "peerId protocolCallId provider recording remote remoteNameDisplayable "
        "removedSkillIds requestedRoutings roomId routingRing routingRule routingRuleType "
        "screenShareAddressSelf screenShareRoomId scriptId selectedAgentId selectedAgentRank "
        "sessionDnis sessionId sharingScreen skipEnabled timeoutSeconds usedRouting "
        "videoAddressSelf videoRoomId waitingInteractionCounts proposedAgents agentGroups "
        "mediaEndpointStats flow metrics segments",
        required="sessionId mediaType direction segments",
        strings="ani direction dnis mediaType provider sessionId",
        enums={
            "direction": "inbound outbound",
            "mediaType": "callback chat cobrowse email message screenshare unknown video voice",
        },
        lists={"segments": "AnalyticsConversationSegment"},
    ),
    "AnalyticsConversationSegment": _m(
        "audioMuted conference destinationConversationId destinationSessionId disconnectType "
        "errorCode groupId q850ResponseCodes queueId requestedLanguageId "
        "requestedRoutingSkillIds requestedRoutingUserIds segmentEnd segmentStart segmentType "
        "sipResponseCodes sourceConversationId sourceSessionId subject videoMuted wrapUpCode "
        "wrapUpNote wrapUpTags scoredAgents properties",
        required="segmentStart segmentType",
        strings="disconnectType errorCode segmentEnd segmentStart segmentType",
        enums={
            "segmentType": "alert barging callback coaching contacting converting delay dialing "
            "hold interact ivr monitoring scheduled sharing system transmitting unknown "
            "uploading voicemail wrapup",
            "disconnectType": "client conferenceTransfer consultTransfer endpoint endpointDnd "
            "error forwardTransfer noAnswerTransfer notAvailableTransfer other peer spam system "
            "timeout transfer transferDnd transportFailure uncallable",
        },
    ),
}


def check(value: Any, model: str, path: str = "$") -> list[str]:
    """Every way ``value`` breaks ``model`` (empty when it conforms)."""
    facts = MODELS[model]
    if not isinstance(value, dict):
        return [f"{path}: a {model} must be an object, got {type(value).__name__}"]
    problems: list[str] = []
    for key in sorted(facts.required - value.keys()):
        problems.append(f"{path}.{key}: required by {model}, missing")
    for key, item in value.items():
        where = f"{path}.{key}"
        if key not in facts.fields:
            problems.append(f"{where}: {model} has no field {key!r}")
            continue
        if item is None:
            problems.append(f"{where}: null (leave the field out instead)")
            continue
        if key in facts.strings and not isinstance(item, str):
            problems.append(f"{where}: must be a string, got {item!r}")
        if key in facts.enums and item not in facts.enums[key]:
            problems.append(f"{where}: {item!r} is not one of the {model} values")
        if key in facts.nested:
            problems += check(item, facts.nested[key], where)
        if key in facts.lists:
            if not isinstance(item, list):
                problems.append(f"{where}: must be a list")
            else:
                for index, element in enumerate(item):
                    problems += check(element, facts.lists[key], f"{where}[{index}]")
        if key in facts.string_maps and not (
            isinstance(item, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in item.items())
        ):
            problems.append(f"{where}: must be a map of strings")
    return problems


def self_uris(value: Any) -> set[str]:
    """Every ``selfUri`` anywhere in ``value``."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "selfUri" and isinstance(item, str):
                found.add(item)
            else:
                found |= self_uris(item)
    elif isinstance(value, list):
        for item in value:
            found |= self_uris(item)
    return found
