import ipaddress

from modelops_services.feedback_routing import Owner

KEY = {"MODELOPS_FEEDBACK_KEY": "k" * 32}


def owner(ip: str) -> Owner:
    return Owner.from_env({"MODELOPS_POD_IP": ip, **KEY})


def test_ids_name_their_pod_and_only_a_valid_signature_is_believed():
    a, b = owner("10.1.2.3"), owner("10.1.2.4")
    rid = a.new_request_id()
    assert b.owner_of(f"{rid}-7") == "10.1.2.3"
    token, packed, sig = rid.split(".")
    assert ipaddress.ip_address(bytes.fromhex(packed)) == ipaddress.ip_address("10.1.2.3")
    forged = f"{token}.{ipaddress.ip_address('10.9.9.9').packed.hex()}.{sig}-0"
    assert b.owner_of(forged) is None
    other_key = Owner.from_env({"MODELOPS_POD_IP": "10.1.2.4", "MODELOPS_FEEDBACK_KEY": "x" * 32})
    assert other_key.owner_of(f"{rid}-0") is None  # another ModelDeployment's id
    for junk in (None, 5, "", "abc-0", "a.b.c-0", f"{token}.zz.{sig}-0", "..-", f"{rid}"[:-1] + "-0"):
        assert b.owner_of(junk) is None


def test_ipv6_pods():
    a = owner("fd00::1:2")
    assert owner("fd00::9").owner_of(a.new_request_id() + "-0") == "fd00::1:2"


def test_labels_are_routed_to_their_owner_and_the_rest_stay_local():
    a, b = owner("10.1.2.3"), owner("10.1.2.4")
    mine, theirs = f"{b.new_request_id()}-0", f"{a.new_request_id()}-1"
    routes = b.route([{"id": mine, "label": 1}, {"id": theirs, "label": 0}, {"id": "plain-0", "label": 1},
                      "not a label", {"label": 1}])
    assert routes["10.1.2.3"] == [{"id": theirs, "label": 0}]
    assert routes[None] == [{"id": mine, "label": 1}, {"id": "plain-0", "label": 1}, "not a label", {"label": 1}]


def test_without_a_pod_ip_or_key_ids_are_plain_and_everything_is_local():
    for env in ({}, {"MODELOPS_POD_IP": "10.1.2.3"}, {"MODELOPS_POD_IP": "not-an-ip", **KEY}):
        o = Owner.from_env(env)
        rid = o.new_request_id()
        assert len(rid) == 32 and "." not in rid
        assert o.owner_of(f"{owner('10.1.2.3').new_request_id()}-0") is None
