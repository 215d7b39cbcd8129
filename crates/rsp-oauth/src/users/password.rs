//! Password hashing: Argon2id PHC strings, computed on a bounded blocking pool.
//!
//! Argon2id at OWASP's parameters costs tens of milliseconds of CPU and 19 MiB per hash. Run on the async
//! runtime it would stall every request sharing the worker; run on an unbounded `spawn_blocking` a login
//! storm would start hundreds at once, exhaust memory and starve the blocking pool the rest of the server
//! uses. So every hash and verification first takes a permit from a semaphore sized to the CPU count:
//! excess logins wait in the semaphore's queue (cheaply, as futures) while token and decision requests
//! keep their share of the machine. Permits run on [`threads`] of the hasher's own, under `SCHED_IDLE`,
//! with one more at nice 10 for a hash those are starved of (so at most one hash more than permits is in
//! memory at once).

mod threads;

use std::sync::atomic::{AtomicU64, Ordering};

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rsp_core::Secret;
use tokio::sync::{OnceCell, Semaphore};

use self::threads::HashThreads;

use crate::crypto::random::{random_bytes, random_token};

/// Why a password could not be hashed or checked. Never the password's fault: a stored hash that does not
/// parse, parameters out of range, or the blocking pool gone.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("stored password hash does not parse: {0}")]
    Corrupt(String),
    #[error("argon2 failed: {0}")]
    Argon2(String),
    #[error("password hashing pool unavailable: {0}")]
    Pool(String),
}

/// Argon2id cost parameters: memory in KiB, passes, lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl HashParams {
    /// OWASP Password Storage Cheat Sheet's first Argon2id set (also the `argon2` crate's default).
    pub const OWASP: Self = Self { memory_kib: 19_456, iterations: 2, parallelism: 1 };

    /// Whether a stored hash made with `other` costs an attacker less than these parameters do.
    fn stronger_than(&self, other: &Params) -> bool {
        other.m_cost() < self.memory_kib || other.t_cost() < self.iterations
    }
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub matches: bool,
    /// The hash matched but was made with weaker parameters (or another algorithm) than the current
    /// ones: the caller should store a fresh hash while it holds the plaintext.
    pub needs_rehash: bool,
}

/// Hashes and verifies passwords on a bounded pool of blocking threads.
#[derive(Debug)]
pub struct PasswordHasher {
    params: HashParams,
    pool: Semaphore,
    pool_size: usize,
    /// Started on first use, one per pool permit.
    threads: std::sync::OnceLock<HashThreads>,
    permits_taken: AtomicU64,
    /// A hash of a random password, verified when the user does not exist, so an unknown username costs
    /// the same time as a wrong password. Made on first use.
    dummy: OnceCell<String>,
}

impl PasswordHasher {
    /// A hasher with `params` whose pool runs at most `pool_size` (at least 1) hashes at once.
    pub fn new(params: HashParams, pool_size: usize) -> Result<Self, HashError> {
        argon2_for(params)?;
        Ok(Self {
            params,
            pool: Semaphore::new(pool_size.max(1)),
            pool_size: pool_size.max(1),
            threads: std::sync::OnceLock::new(),
            permits_taken: AtomicU64::new(0),
            dummy: OnceCell::new(),
        })
    }

    /// OWASP parameters, one pool slot per CPU but one: a login storm then never takes every core, and
    /// token, introspection and decision requests keep one to themselves (one slot on a single CPU).
    pub fn owasp() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let pool_size = cpus.saturating_sub(1).max(1);
        Self {
            params: HashParams::OWASP,
            pool: Semaphore::new(pool_size),
            pool_size,
            threads: std::sync::OnceLock::new(),
            permits_taken: AtomicU64::new(0),
            dummy: OnceCell::new(),
        }
    }

    pub fn params(&self) -> HashParams {
        self.params
    }

    /// How many pool permits have been taken since start: each is one Argon2 computation. Lets tests
    /// prove that refused (throttled or oversized) attempts never reach the hasher.
    pub fn permits_taken(&self) -> u64 {
        self.permits_taken.load(Ordering::Relaxed)
    }

    /// A PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) with a fresh 128-bit salt.
    pub async fn hash(&self, password: &Secret) -> Result<String, HashError> {
        let params = self.params;
        let password = password.clone();
        self.on_pool(move || hash_with(params, &password)).await?
    }

    /// Checks `password` against `stored`, or against the dummy hash when there is none (unknown user, or
    /// a user without a password), which never matches but costs the same.
    pub async fn verify(&self, password: &Secret, stored: Option<&str>) -> Result<Verdict, HashError> {
        let (phc, real) = match stored {
            Some(phc) => (phc.to_owned(), true),
            None => (self.dummy_hash().await?.clone(), false),
        };
        let params = self.params;
        let password = password.clone();
        let verdict = self.on_pool(move || verify_with(params, &password, &phc)).await??;
        Ok(Verdict { matches: verdict.matches && real, needs_rehash: verdict.needs_rehash && real })
    }

    async fn dummy_hash(&self) -> Result<&String, HashError> {
        self.dummy
            .get_or_try_init(|| async {
                let throwaway = Secret::new(random_token(32));
                self.hash(&throwaway).await
            })
            .await
    }

    /// Runs `work` on a hashing thread once a pool permit is free. The permit is held until the answer
    /// comes, from whichever thread gives it (see [`threads`]).
    async fn on_pool<T, W>(&self, work: W) -> Result<T, HashError>
    where
        T: Send + 'static,
        W: Fn() -> T + Send + Sync + 'static,
    {
        let _permit = self.pool.acquire().await.map_err(|e| HashError::Pool(e.to_string()))?;
        self.permits_taken.fetch_add(1, Ordering::Relaxed);
        self.threads()?.run(work).await.ok_or_else(|| HashError::Pool("no hashing thread answered".to_owned()))
    }

    fn threads(&self) -> Result<&HashThreads, HashError> {
        if let Some(threads) = self.threads.get() {
            return Ok(threads);
        }
        let started = HashThreads::start(self.pool_size).map_err(|e| HashError::Pool(e.to_string()))?;
        // Two first callers may race; the loser's threads end when it is dropped here.
        Ok(self.threads.get_or_init(|| started))
    }
}

fn argon2_for(params: HashParams) -> Result<Argon2<'static>, HashError> {
    let params = Params::new(params.memory_kib, params.iterations, params.parallelism, None)
        .map_err(|e| HashError::Argon2(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn hash_with(params: HashParams, password: &Secret) -> Result<String, HashError> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()).map_err(|e| HashError::Argon2(e.to_string()))?;
    argon2_for(params)?
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| HashError::Argon2(e.to_string()))
}

/// Verifies with the parameters recorded in `phc` (the `argon2` verifier reads them from the hash), then
/// compares them with the current ones. The comparison of digests is the library's constant-time one.
fn verify_with(current: HashParams, password: &Secret, phc: &str) -> Result<Verdict, HashError> {
    let parsed = PasswordHash::new(phc).map_err(|e| HashError::Corrupt(e.to_string()))?;
    let matches = match Argon2::default().verify_password(password.expose().as_bytes(), &parsed) {
        Ok(()) => true,
        Err(argon2::password_hash::Error::Password) => false,
        Err(other) => return Err(HashError::Corrupt(other.to_string())),
    };
    let weaker = parsed.algorithm != Algorithm::Argon2id.ident()
        || parsed.version != Some(Version::V0x13.into())
        || Params::try_from(&parsed).map_or(true, |stored| current.stronger_than(&stored));
    Ok(Verdict { matches, needs_rehash: matches && weaker })
}
