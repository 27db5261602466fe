"""Fraud checks: pure rules over a period's records (`rules`), their thresholds
(`settings`), and the records they read and the alerts they produce (`records`)."""

from settlement.fraud.records import Alert, FraudInputs, Severity
from settlement.fraud.rules import RULES, evaluate
from settlement.fraud.settings import FraudSettings

__all__ = ["RULES", "Alert", "FraudInputs", "FraudSettings", "Severity", "evaluate"]
