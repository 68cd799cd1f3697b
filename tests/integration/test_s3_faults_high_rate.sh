#!/usr/bin/env bash
# The S3 fault scenarios of test_s3_faults.sh again at a high rate: a quarter of the
# requests fail, so requests fail repeatedly and whole attempts do too.
export FERRY_FAULT_RATE=${FERRY_FAULT_RATE_HIGH:-0.25}
source "$(dirname "$0")/test_s3_faults.sh"
