/**
 * The polkit rule for scale-out (issue 14, item 3), run as polkit runs it: the generated text is
 * evaluated with a stand-in for polkit's `addRule`, and asked what polkit would ask.
 */
import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import { polkitRule } from "../../src/scaleout/polkit-rule.js";
import { policy } from "../reconcile/fixtures.js";

type Rule = (action: { id: string; lookup(key: string): string | undefined }, subject: { user: string }) => string;

function load(text: string): Rule {
  const rules: Rule[] = [];
  const polkit = { Result: { YES: "yes", NO: "no", NOT_HANDLED: "not-handled" }, addRule: (rule: Rule) => rules.push(rule) };
  runInNewContext(text, { polkit });
  expect(rules).toHaveLength(1);
  return rules[0]!;
}

const ask = (rule: Rule, user: string, verb: string, unit: string, id = "org.freedesktop.systemd1.manage-units") =>
  rule({ id, lookup: (key) => ({ verb, unit })[key as "verb" | "unit"] }, { user });

describe("the scale-out polkit rule", () => {
  const policies = [
    policy({ name: "tickets", unit: "tickets@*.service", minPassing: 1, instances: ["3001", "3002"] }),
    policy({ name: "plain", unit: "plain@*.service" }),
  ];
  const rule = load(polkitRule(policies, "registrar", "/etc/registrar/policies.d"));

  it("lets the daemon's user start exactly the units of its pools", () => {
    expect(ask(rule, "registrar", "start", "tickets@3001.service")).toBe("yes");
    expect(ask(rule, "registrar", "start", "tickets@3002.service")).toBe("yes");
  });

  it("and nothing else: no other unit, verb, user or action", () => {
    expect(ask(rule, "registrar", "start", "tickets@3003.service")).toBe("not-handled");
    expect(ask(rule, "registrar", "start", "plain@1.service")).toBe("not-handled");
    expect(ask(rule, "registrar", "start", "ssh.service")).toBe("not-handled");
    expect(ask(rule, "registrar", "stop", "tickets@3001.service")).toBe("not-handled");
    expect(ask(rule, "registrar", "restart", "tickets@3001.service")).toBe("not-handled");
    expect(ask(rule, "alice", "start", "tickets@3001.service")).toBe("not-handled");
    expect(ask(rule, "registrar", "start", "tickets@3001.service", "org.freedesktop.systemd1.manage-unit-files")).toBe("not-handled");
  });

  it("allows nothing when no policy sets minPassing", () => {
    const none = load(polkitRule([policies[1]!], "registrar", "/p"));
    expect(ask(none, "registrar", "start", "plain@1.service")).toBe("not-handled");
  });
});
