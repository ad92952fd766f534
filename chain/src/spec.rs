//! The chain specification and the genesis block.
//!
//! A NetMind chain is described by an `alloy-genesis` JSON file (geth's format):
//! `config.chainId`, a `config.clique` section (`period`, `epoch`), the hardfork
//! that is active from block 0 (Cancun via `cancunTime: 0`, Prague via
//! `pragueTime: 0`; Paris is always active at block 0 so there are no block
//! rewards), `extraData` with the initial authorities in EIP-225 layout, and the
//! allocations.

use std::collections::BTreeMap;

use alloy_consensus::{EMPTY_OMMER_ROOT_HASH, Header, constants::EMPTY_ROOT_HASH};
use alloy_eips::{eip1559::INITIAL_BASE_FEE, eip7685::EMPTY_REQUESTS_HASH, eip7840::BlobParams};
use alloy_evm::eth::spec::EthExecutorSpec;
use alloy_genesis::{ChainConfig, CliqueConfig, Genesis, GenesisAccount};
use alloy_hardforks::{EthereumChainHardforks, EthereumHardfork, EthereumHardforks, ForkCondition};
use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_signer_local::PrivateKeySigner;

use crate::clique::{EXTRA_SEAL, EXTRA_VANITY};
use crate::{Error, Result};

/// The Clique epoch used when the genesis does not name one (EIP-225's default).
pub const DEFAULT_EPOCH: u64 = 30_000;
/// Chain id of `netmind node dev`.
pub const DEV_CHAIN_ID: u64 = 1337;
/// Block gas limit of the dev chain (high enough for thousands of transfers a block).
pub const DEV_GAS_LIMIT: u64 = 600_000_000;

/// The well-known development keys (the first five of the `test test ... junk`
/// mnemonic that anvil and hardhat use). Public knowledge: never hold real value
/// with them. The first one is the dev chain's authority.
pub const DEV_KEYS: [&str; 5] = [
    "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
];

/// The hardfork a chain runs from block 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fork {
    /// Cancun (EIP-4844 headers, EIP-4788 beacon root, no requests).
    Cancun,
    /// Prague (adds EIP-7702, EIP-2935, BLS precompiles, requests hash).
    Prague,
}

/// What the node needs to know about its chain.
#[derive(Debug, Clone)]
pub struct ChainSpec {
    forks: EthereumChainHardforks,
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// The hardfork active from block 0.
    pub fork: Fork,
    /// Minimum seconds between blocks (Clique `period`); 0 seals as soon as
    /// transactions arrive.
    pub period: u64,
    /// Clique epoch: votes are reset and the signer list is written every `epoch` blocks.
    pub epoch: u64,
    /// Whether this is a Clique chain (one this node can seal and verify seals of);
    /// `false` for chains that can only be imported with trusted seals.
    pub clique: bool,
    /// The parsed genesis file.
    pub genesis: Genesis,
}

impl ChainSpec {
    /// Reads and checks a genesis JSON file.
    pub fn from_genesis_file(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Genesis(format!("cannot read {}: {e}", path.display())))?;
        Self::from_genesis_json(&text)
    }

    /// Parses and checks a genesis JSON document.
    pub fn from_genesis_json(json: &str) -> Result<Self> {
        let genesis: Genesis =
            serde_json::from_str(json).map_err(|e| Error::Genesis(e.to_string()))?;
        Self::from_genesis(genesis)
    }

    /// Checks a parsed genesis. A genesis with a `config.clique` section is a chain
    /// this node can seal: chain id set, Cancun or Prague at time 0, at least one
    /// authority in `extraData`. A genesis without one (an ethash / proof-of-stake
    /// chain such as the execution-apis test chain) can only be imported with
    /// trusted seals ([`crate::import`]): its hardforks are read from the config
    /// block by block, Paris at `mergeNetsplitBlock` (or block 0 when the terminal
    /// total difficulty is 0).
    pub fn from_genesis(genesis: Genesis) -> Result<Self> {
        let cfg = &genesis.config;
        if cfg.chain_id == 0 {
            return Err(Error::Genesis(
                "config.chainId must be set (non-zero)".into(),
            ));
        }
        let Some(clique) = cfg.clique.as_ref() else {
            return Ok(Self {
                forks: forks_from_config(cfg)?,
                chain_id: cfg.chain_id,
                // Only used by the pool's admission rules (no sealing on such chains).
                fork: Fork::Prague,
                period: 0,
                epoch: DEFAULT_EPOCH,
                clique: false,
                genesis,
            });
        };
        let fork = match (cfg.cancun_time, cfg.prague_time) {
            (_, Some(0)) => Fork::Prague,
            (Some(0), None) => Fork::Cancun,
            _ => {
                return Err(Error::Genesis(
                    "config must activate cancunTime or pragueTime at 0 (later forks are not supported)"
                        .into(),
                ));
            }
        };
        if cfg.osaka_time.is_some() {
            return Err(Error::Genesis(
                "osakaTime is not supported; remove it".into(),
            ));
        }
        let epoch = clique.epoch.unwrap_or(DEFAULT_EPOCH);
        if epoch == 0 {
            return Err(Error::Genesis("config.clique.epoch must be > 0".into()));
        }
        let spec = Self {
            forks: forks(fork),
            chain_id: cfg.chain_id,
            fork,
            period: clique.period.unwrap_or(1),
            epoch,
            clique: true,
            genesis,
        };
        if spec.genesis_signers()?.is_empty() {
            return Err(Error::Genesis(
                "extraData names no authority (32 vanity bytes, N*20 address bytes, 65 zero bytes)"
                    .into(),
            ));
        }
        if spec.genesis.gas_limit < 21_000 {
            return Err(Error::Genesis("gasLimit must be at least 21000".into()));
        }
        Ok(spec)
    }

    /// The dev chain: chain id [`DEV_CHAIN_ID`], Prague, the first [`DEV_KEYS`] key
    /// as the only authority, each dev key funded with 10,000 ETH-equivalent.
    pub fn dev(period: u64) -> Self {
        let keys = dev_signers();
        let authority = keys[0].address();
        let alloc: BTreeMap<Address, GenesisAccount> = keys
            .iter()
            .map(|k| {
                let balance = U256::from(10_000u64) * U256::from(10u64).pow(U256::from(18u64));
                (
                    k.address(),
                    GenesisAccount {
                        balance,
                        ..Default::default()
                    },
                )
            })
            .collect();
        let genesis = Genesis {
            config: ChainConfig {
                chain_id: DEV_CHAIN_ID,
                homestead_block: Some(0),
                eip150_block: Some(0),
                eip155_block: Some(0),
                eip158_block: Some(0),
                byzantium_block: Some(0),
                constantinople_block: Some(0),
                petersburg_block: Some(0),
                istanbul_block: Some(0),
                berlin_block: Some(0),
                london_block: Some(0),
                terminal_total_difficulty: Some(U256::ZERO),
                terminal_total_difficulty_passed: true,
                shanghai_time: Some(0),
                cancun_time: Some(0),
                prague_time: Some(0),
                clique: Some(CliqueConfig {
                    period: Some(period),
                    epoch: Some(DEFAULT_EPOCH),
                }),
                ..Default::default()
            },
            extra_data: signers_extra(&[authority]),
            gas_limit: DEV_GAS_LIMIT,
            difficulty: U256::from(1),
            base_fee_per_gas: Some(INITIAL_BASE_FEE.into()),
            alloc,
            ..Default::default()
        };
        Self::from_genesis(genesis).expect("the dev genesis is valid")
    }

    /// The EIP-4844 blob parameters of the active fork.
    pub fn blob_params(&self) -> BlobParams {
        match self.fork {
            Fork::Cancun => BlobParams::cancun(),
            Fork::Prague => BlobParams::prague(),
        }
    }

    /// The EIP-4844 blob parameters in force at `timestamp` (`None` before Cancun),
    /// following the genesis `blobSchedule` (Osaka and the BPO forks included).
    pub fn blob_params_at(&self, timestamp: u64) -> Option<BlobParams> {
        if self.clique {
            return Some(self.blob_params());
        }
        let schedule = self.genesis.config.blob_schedule_blob_params();
        if self.is_osaka_active_at_timestamp(timestamp) {
            Some(
                schedule
                    .active_scheduled_params_at_timestamp(timestamp)
                    .copied()
                    .unwrap_or(schedule.osaka),
            )
        } else if self.is_prague_active_at_timestamp(timestamp) {
            Some(schedule.prague)
        } else if self.is_cancun_active_at_timestamp(timestamp) {
            Some(schedule.cancun)
        } else {
            None
        }
    }

    /// The authorities listed in the genesis `extraData`.
    pub fn genesis_signers(&self) -> Result<Vec<Address>> {
        let extra = &self.genesis.extra_data;
        if extra.len() < EXTRA_VANITY + EXTRA_SEAL
            || !(extra.len() - EXTRA_VANITY - EXTRA_SEAL).is_multiple_of(20)
        {
            return Err(Error::Genesis(format!(
                "extraData is {} bytes; expected 32 + 20*N + 65",
                extra.len()
            )));
        }
        Ok(extra[EXTRA_VANITY..extra.len() - EXTRA_SEAL]
            .chunks(20)
            .map(Address::from_slice)
            .collect())
    }

    /// The genesis header; its `state_root` is computed from the allocations.
    pub fn genesis_header(&self) -> Header {
        let g = &self.genesis;
        let state_root = alloy_trie::root::state_root_ref_unhashed(&g.alloc);
        let (n, t) = (g.number.unwrap_or(0), g.timestamp);
        let cancun = self.is_cancun_active_at_timestamp(t);
        Header {
            parent_hash: g.parent_hash.unwrap_or_default(),
            ommers_hash: EMPTY_OMMER_ROOT_HASH,
            beneficiary: g.coinbase,
            state_root,
            transactions_root: EMPTY_ROOT_HASH,
            receipts_root: EMPTY_ROOT_HASH,
            difficulty: g.difficulty,
            number: g.number.unwrap_or(0),
            gas_limit: g.gas_limit,
            timestamp: g.timestamp,
            extra_data: g.extra_data.clone(),
            mix_hash: g.mix_hash,
            nonce: g.nonce.into(),
            base_fee_per_gas: self.is_london_active_at_block(n).then(|| {
                g.base_fee_per_gas
                    .map_or(INITIAL_BASE_FEE, |f| f.try_into().unwrap_or(u64::MAX))
            }),
            withdrawals_root: self
                .is_shanghai_active_at_timestamp(t)
                .then_some(EMPTY_ROOT_HASH),
            blob_gas_used: cancun.then(|| g.blob_gas_used.unwrap_or(0)),
            excess_blob_gas: cancun.then(|| g.excess_blob_gas.unwrap_or(0)),
            parent_beacon_block_root: cancun.then_some(B256::ZERO),
            requests_hash: self
                .is_prague_active_at_timestamp(t)
                .then_some(EMPTY_REQUESTS_HASH),
            ..Default::default()
        }
    }
}

/// The dev keys as signers.
pub fn dev_signers() -> Vec<PrivateKeySigner> {
    DEV_KEYS
        .iter()
        .map(|k| k.parse().expect("valid dev key"))
        .collect()
}

/// EIP-225 genesis `extraData`: 32 zero bytes, the signers sorted, 65 zero bytes.
pub fn signers_extra(signers: &[Address]) -> Bytes {
    let mut sorted = signers.to_vec();
    sorted.sort();
    let mut extra = vec![0u8; EXTRA_VANITY];
    for s in &sorted {
        extra.extend_from_slice(s.as_slice());
    }
    extra.extend_from_slice(&[0u8; EXTRA_SEAL]);
    extra.into()
}

fn forks(fork: Fork) -> EthereumChainHardforks {
    use EthereumHardfork as F;
    let mut v: Vec<(F, ForkCondition)> = [
        F::Frontier,
        F::Homestead,
        F::Tangerine,
        F::SpuriousDragon,
        F::Byzantium,
        F::Constantinople,
        F::Petersburg,
        F::Istanbul,
        F::MuirGlacier,
        F::Berlin,
        F::London,
        F::ArrowGlacier,
        F::GrayGlacier,
    ]
    .into_iter()
    .map(|f| (f, ForkCondition::Block(0)))
    .collect();
    // Paris at block 0: no block rewards, PREVRANDAO reads the (zero) mix hash.
    v.push((
        F::Paris,
        ForkCondition::TTD {
            activation_block_number: 0,
            fork_block: Some(0),
            total_difficulty: U256::ZERO,
        },
    ));
    v.push((F::Shanghai, ForkCondition::Timestamp(0)));
    v.push((F::Cancun, ForkCondition::Timestamp(0)));
    if fork == Fork::Prague {
        v.push((F::Prague, ForkCondition::Timestamp(0)));
    }
    EthereumChainHardforks::new(v)
}

/// The hardfork schedule written in a genesis `config` (geth's field names).
fn forks_from_config(cfg: &ChainConfig) -> Result<EthereumChainHardforks> {
    use EthereumHardfork as F;
    let mut v = vec![(F::Frontier, ForkCondition::Block(0))];
    let blocks = [
        (F::Homestead, cfg.homestead_block),
        (F::Dao, cfg.dao_fork_block),
        (F::Tangerine, cfg.eip150_block),
        (F::SpuriousDragon, cfg.eip158_block),
        (F::Byzantium, cfg.byzantium_block),
        (F::Constantinople, cfg.constantinople_block),
        (F::Petersburg, cfg.petersburg_block),
        (F::Istanbul, cfg.istanbul_block),
        (F::MuirGlacier, cfg.muir_glacier_block),
        (F::Berlin, cfg.berlin_block),
        (F::London, cfg.london_block),
        (F::ArrowGlacier, cfg.arrow_glacier_block),
        (F::GrayGlacier, cfg.gray_glacier_block),
    ];
    v.extend(
        blocks
            .into_iter()
            .filter_map(|(f, b)| b.map(|b| (f, ForkCondition::Block(b)))),
    );
    if let Some(ttd) = cfg.terminal_total_difficulty {
        let block = match cfg.merge_netsplit_block {
            Some(b) => b,
            None if ttd.is_zero() => 0,
            None => {
                return Err(Error::Genesis(
                    "terminalTotalDifficulty > 0 needs mergeNetsplitBlock (the first proof-of-stake block)"
                        .into(),
                ));
            }
        };
        v.push((
            F::Paris,
            ForkCondition::TTD {
                activation_block_number: block,
                fork_block: Some(block),
                total_difficulty: ttd,
            },
        ));
    }
    let times = [
        (F::Shanghai, cfg.shanghai_time),
        (F::Cancun, cfg.cancun_time),
        (F::Prague, cfg.prague_time),
        (F::Osaka, cfg.osaka_time),
        (F::Bpo1, cfg.bpo1_time),
        (F::Bpo2, cfg.bpo2_time),
        (F::Bpo3, cfg.bpo3_time),
        (F::Bpo4, cfg.bpo4_time),
        (F::Bpo5, cfg.bpo5_time),
    ];
    v.extend(
        times
            .into_iter()
            .filter_map(|(f, t)| t.map(|t| (f, ForkCondition::Timestamp(t)))),
    );
    if cfg.amsterdam_time.is_some() {
        return Err(Error::Genesis("amsterdamTime is not supported".into()));
    }
    Ok(EthereumChainHardforks::new(v))
}

impl EthereumHardforks for ChainSpec {
    fn ethereum_fork_activation(&self, fork: EthereumHardfork) -> ForkCondition {
        self.forks.ethereum_fork_activation(fork)
    }
}

impl EthExecutorSpec for ChainSpec {
    // `None` would fall back to the mainnet deposit contract; we have none.
    fn deposit_contract_address(&self) -> Option<Address> {
        Some(
            self.genesis
                .config
                .deposit_contract_address
                .unwrap_or(Address::ZERO),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_genesis_is_prague_with_one_authority() {
        let spec = ChainSpec::dev(1);
        assert_eq!(spec.fork, Fork::Prague);
        assert_eq!(
            spec.genesis_signers().unwrap(),
            vec![dev_signers()[0].address()]
        );
        let h = spec.genesis_header();
        assert_eq!(h.requests_hash, Some(EMPTY_REQUESTS_HASH));
        assert_ne!(h.state_root, EMPTY_ROOT_HASH);
    }

    #[test]
    fn genesis_round_trips_through_json() {
        let spec = ChainSpec::dev(2);
        let json = serde_json::to_string(&spec.genesis).unwrap();
        let again = ChainSpec::from_genesis_json(&json).unwrap();
        assert_eq!(again.period, 2);
        assert_eq!(
            again.genesis_header().hash_slow(),
            spec.genesis_header().hash_slow()
        );
    }

    #[test]
    fn rejects_genesis_without_cancun() {
        let mut g = ChainSpec::dev(1).genesis;
        g.config.prague_time = None;
        g.config.cancun_time = None;
        let err = ChainSpec::from_genesis(g).unwrap_err().to_string();
        assert!(err.contains("cancunTime or pragueTime"), "{err}");
    }
}
