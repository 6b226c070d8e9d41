"""ALB's access-log entry format as AWS documents it, for the tests: Athena's table regex
(the ``input.regex`` of AWS's ``CREATE TABLE alb_access_logs`` for Application Load
Balancer logs) and the field names in their documented order."""

from __future__ import annotations

import re

FIELDS = (
    "type",
    "time",
    "elb",
    "client_ip",
    "client_port",
    "target_ip",
    "target_port",
    "request_processing_time",
    "target_processing_time",
    "response_processing_time",
    "elb_status_code",
    "target_status_code",
    "received_bytes",
    "sent_bytes",
    "request_verb",
    "request_url",
    "request_proto",
    "user_agent",
    "ssl_cipher",
    "ssl_protocol",
    "target_group_arn",
    "trace_id",
    "domain_name",
    "chosen_cert_arn",
    "matched_rule_priority",
    "request_creation_time",
    "actions_executed",
    "redirect_url",
    "lambda_error_reason",
    "target_port_list",
    "target_status_code_list",
    "classification",
    "classification_reason",
    "conn_trace_id",
)

ATHENA_REGEX = re.compile(
    r"([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*):([0-9]*) ([^ ]*)[:-]([0-9]*) ([-.0-9]*) ([-.0-9]*) "
    r'([-.0-9]*) (|[-0-9]*) (-|[-0-9]*) ([-0-9]*) ([-0-9]*) "([^ ]*) (.*) (- |[^ ]*)" '
    r'"([^"]*)" ([A-Z0-9-_]+) ([A-Za-z0-9.-]*) ([^ ]*) "([^"]*)" "([^"]*)" "([^"]*)" '
    r'([-.0-9]*) ([^ ]*) "([^"]*)" "([^"]*)" "([^ ]*)" "([^\s]+?)" "([^\s]+)" "([^ ]*)" '
    r'"([^ ]*)" ?([^ ]*)?'
)


def parse(line: str) -> dict[str, str]:
    """The line's fields by name; AssertionError if it is not an ALB access-log entry."""
    match = ATHENA_REGEX.fullmatch(line)
    assert match is not None, f"not an ALB access-log entry: {line}"
    return dict(zip(FIELDS, match.groups(), strict=True))
