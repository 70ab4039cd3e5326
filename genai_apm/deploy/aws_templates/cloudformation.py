"""Small CloudFormation helpers every template uses."""

from __future__ import annotations

from typing import Any


def ref(name: str) -> dict:
    return {"Ref": name}


def att(resource: str, attribute: str) -> dict:
    return {"Fn::GetAtt": [resource, attribute]}


def sub(text: str, variables: dict | None = None) -> dict:
    return {"Fn::Sub": [text, variables] if variables else text}


def _template(description: str, parameters: dict, resources: dict, outputs: dict) -> dict:
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": description,
        "Parameters": parameters,
        "Resources": resources,
        "Outputs": outputs,
    }


def _output(value: Any, description: str, export: str | None = None) -> dict:
    out: dict[str, Any] = {"Description": description, "Value": value}
    if export:
        out["Export"] = {"Name": sub("${AWS::StackName}-" + export)}
    return out
