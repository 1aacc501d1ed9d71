"""A chain too long for one secret value: RSA-4096 intermediates at the 4,096 limit."""

from __future__ import annotations

import copy
import datetime as dt
import uuid

from certrotor.aws.secrets import SecretStore
from certrotor.config import KeyAlgorithm, load_config
from certrotor.layout.split import UNUSED_PART
from certrotor.local.ca import LocalCA
from certrotor.local.driver import RotationDriver
from certrotor.local.emulator import Emulator
from certrotor.local.provision import DEFAULT_CONFIG, create_private_ca, provision
from certrotor.services.reader import SetReader
from certrotor.services.verify import verify_set


def test_rsa_4096_intermediates_spread_the_chain_over_several_parts(emulator: Emulator) -> None:
    # Given Private CA under an RSA-4096 intermediate under an RSA-4096 root
    root = LocalCA.create_root("long chain root", KeyAlgorithm.RSA_4096)
    intermediate = root.create_subordinate("long chain intermediate", KeyAlgorithm.RSA_4096)
    ca_arn = create_private_ca(emulator, root, "long chain subordinate", "RSA_4096", (intermediate,))
    data = copy.deepcopy(DEFAULT_CONFIG)
    data["ca"] = {"arn": ca_arn}
    data["service_name"] = f"long{uuid.uuid4().hex[:8]}"
    data["sets"][0].update(name=f"long{uuid.uuid4().hex[:8]}/web", chain_parts=3, value_limit=4096, services=[])
    env = provision(emulator, load_config(data), root)
    cert_set = env.config.sets[0]
    # When the set is rotated
    RotationDriver(env).rotate(cert_set.name)
    # Then the chain took two or more parts, every value fits the limit, and it reads back whole
    store = SecretStore(emulator.client("secretsmanager"))
    values = {name: store.get(name).value for name in (cert_set.name, *cert_set.part_secret_names)}
    used = [n for n in cert_set.chain_secret_names if values[n] != UNUSED_PART]
    assert len(used) >= 2
    assert all(len(v) <= 4096 for v in values.values())
    current = SetReader(store).read(cert_set.name)
    verified = verify_set(current, dt.datetime.now(dt.UTC), anchor=root.certificate, expected=cert_set, handshake=True)
    assert [c.subject for c in verified.bundle.chain][-1] == root.certificate.subject
