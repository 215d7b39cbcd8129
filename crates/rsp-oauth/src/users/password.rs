//! Password hashing: Argon2id PHC strings, computed on a bounded blocking pool.
//!
//! Argon2id at OWASP's parameters costs tens of milliseconds of CPU and 19 MiB per hash. Run on the async
//! runtime it would stall every request sharing the worker; run on an unbounded `spawn_blocking` a login
//! storm would start hundreds at once, exhaust memory and starve the blocking pool the rest of the server
//! uses. So every hash and verification first takes a permit from a semaphore sized to the CPU count:
//! excess logins wait in the semaphore's queue (cheaply, as futures) while token and decision requests
//! keep their share of the machine. Permits run on [`threads`] of the hasher's own, under `SCHED_IDLE`,
//! with one more at nice 10 for a hash those are starved of (so at most one hash more than permits is in
//! memory at once). Their working memory is kept between hashes ([`scratch`]).

mod scratch;
mod threads;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rsp_core::Secret;
use tokio::sync::{OnceCell, Semaphore};

use self::scratch::ScratchMemory;
use self::threads::HashThreads;

use crate::crypto::random::{random_bytes, random_token};

/// Seconds each Argon2 computation took (hashing or verifying), on the hashing thread: with
/// [`HASHING_THREADS`], how much of the hashing capacity logins use (`rate(…_sum)` / threads).
pub const HASH_SECONDS: &str = "rsp_password_hash_seconds";
/// How many Argon2 computations may run at once (the pool's permits), set when the hashing threads start.
pub const HASHING_THREADS: &str = "rsp_password_hashing_threads";

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
    scratch: Arc<ScratchMemory>,
    permits_taken: AtomicU64,
    /// A hash of a random password, verified when the user does not exist, so an unknown username costs
    /// the same time as a wrong password. Made on first use.
    dummy: OnceCell<String>,
}

impl PasswordHasher {
    /// A hasher with `params` whose pool runs at most `pool_size` (at least 1) hashes at once.
    pub fn new(params: HashParams, pool_size: usize) -> Result<Self, HashError> {
        let checked = argon2_for(params)?;
        Ok(Self::assemble(params, checked.params(), pool_size))
    }

    /// OWASP parameters, one pool slot per CPU but one: a login storm then never takes every core, and
    /// token, introspection and decision requests keep one to themselves (one slot on a single CPU).
    pub fn owasp() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        // `HashParams::OWASP` is the library's default, so its checked form needs no check.
        Self::assemble(HashParams::OWASP, &Params::DEFAULT, cpus.saturating_sub(1))
    }

    fn assemble(params: HashParams, checked: &Params, pool_size: usize) -> Self {
        let pool_size = pool_size.max(1);
        Self {
            params,
            pool: Semaphore::new(pool_size),
            pool_size,
            threads: std::sync::OnceLock::new(),
            scratch: Arc::new(ScratchMemory::new(checked.block_count())),
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
        let (params, scratch) = (self.params, self.scratch.clone());
        let password = password.clone();
        self.on_pool(move || hash_with(params, &password, &scratch)).await?
    }

    /// Checks `password` against `stored`, or against the dummy hash when there is none (unknown user, or
    /// a user without a password), which never matches but costs the same.
    pub async fn verify(&self, password: &Secret, stored: Option<&str>) -> Result<Verdict, HashError> {
        let (phc, real) = match stored {
            Some(phc) => (phc.to_owned(), true),
            None => (self.dummy_hash().await?.clone(), false),
        };
        let (params, scratch) = (self.params, self.scratch.clone());
        let password = password.clone();
        let verdict = self.on_pool(move || verify_with(params, &password, &phc, &scratch)).await??;
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
        let scratch = self.scratch.clone();
        let started = HashThreads::start(self.pool_size, Arc::new(move || scratch.release_unused()))
            .map_err(|e| HashError::Pool(e.to_string()))?;
        #[expect(clippy::cast_precision_loss, reason = "a gauge is an f64; a thread count fits")]
        metrics::gauge!(HASHING_THREADS).set(self.pool_size as f64);
        // Two first callers may race; the loser's threads end when it is dropped here.
        Ok(self.threads.get_or_init(|| started))
    }
}

fn argon2_for(params: HashParams) -> Result<Argon2<'static>, HashError> {
    let params = Params::new(params.memory_kib, params.iterations, params.parallelism, None)
        .map_err(|e| HashError::Argon2(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// A PHC string with a fresh 128-bit salt. Built here rather than by the library's `hash_password`, which
/// allocates Argon2's memory for each hash (see [`scratch`]).
fn hash_with(params: HashParams, password: &Secret, scratch: &ScratchMemory) -> Result<String, HashError> {
    let argon2 = argon2_for(params)?;
    let salt = SaltString::encode_b64(&random_bytes::<16>()).map_err(|e| HashError::Argon2(e.to_string()))?;
    let hash = compute(&argon2, password, salt.as_salt(), scratch).map_err(|e| HashError::Argon2(e.to_string()))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon2.params()).map_err(|e| HashError::Argon2(e.to_string()))?,
        salt: Some(salt.as_salt()),
        hash: Some(hash),
    };
    Ok(phc.to_string())
}

/// Argon2 of `password` and `salt` (in its PHC base64 form) at `argon2`'s settings, in kept memory.
fn compute(
    argon2: &Argon2<'_>,
    password: &Secret,
    salt: argon2::password_hash::Salt<'_>,
    scratch: &ScratchMemory,
) -> Result<Output, argon2::password_hash::Error> {
    let mut salt_bytes = [0u8; argon2::password_hash::Salt::MAX_LENGTH];
    let salt = salt.decode_b64(&mut salt_bytes)?;
    let output_len = argon2.params().output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let started = Instant::now();
    let output = Output::init_with(output_len, |out| {
        scratch.with(argon2.params().block_count(), |memory| {
            argon2.hash_password_into_with_memory(password.expose().as_bytes(), salt, out, memory)
        })?;
        Ok(())
    });
    metrics::histogram!(HASH_SECONDS).record(started.elapsed().as_secs_f64());
    output
}

/// Verifies with the algorithm, version and parameters recorded in `phc` (as the library's verifier does),
/// then compares them with the current ones. [`Output`]'s comparison of digests is constant-time.
fn verify_with(
    current: HashParams,
    password: &Secret,
    phc: &str,
    scratch: &ScratchMemory,
) -> Result<Verdict, HashError> {
    fn corrupt(error: impl std::fmt::Display) -> HashError {
        HashError::Corrupt(error.to_string())
    }
    let parsed = PasswordHash::new(phc).map_err(corrupt)?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(HashError::Corrupt("no salt or no hash".to_owned()));
    };
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(corrupt)?;
    let version = parsed.version.map(Version::try_from).transpose().map_err(corrupt)?.unwrap_or_default();
    let stored_params = Params::try_from(&parsed).map_err(corrupt)?;
    let argon2 = Argon2::new(algorithm, version, stored_params.clone());
    let matches = compute(&argon2, password, salt, scratch).map_err(corrupt)? == expected;
    let weaker = algorithm != Algorithm::Argon2id || version != Version::V0x13 || current.stronger_than(&stored_params);
    Ok(Verdict { matches, needs_rehash: matches && weaker })
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    use super::*;

    const CHEAP: HashParams = HashParams { memory_kib: 64, iterations: 1, parallelism: 1 };

    /// Our PHC strings are the library's own, both ways: hashes stored before the kept memory (made by
    /// `argon2`'s `hash_password`) still verify, and ours verify with the library's verifier.
    #[test]
    fn hashes_made_in_kept_memory_are_the_librarys_phc_strings() {
        let scratch = ScratchMemory::new(argon2_for(CHEAP).unwrap().params().block_count());
        let password = Secret::new("correct horse".to_owned());
        let wrong = Secret::new("wrong horse".to_owned());

        let salt = SaltString::encode_b64(&[7; 16]).unwrap();
        let theirs = argon2_for(CHEAP).unwrap().hash_password(b"correct horse", &salt).unwrap().to_string();
        let verdict = verify_with(CHEAP, &password, &theirs, &scratch).unwrap();
        assert_eq!(verdict, Verdict { matches: true, needs_rehash: false });
        assert!(!verify_with(CHEAP, &wrong, &theirs, &scratch).unwrap().matches);

        let ours = hash_with(CHEAP, &password, &scratch).unwrap();
        assert!(ours.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{ours}");
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default().verify_password(b"correct horse", &parsed).is_ok());
        assert!(Argon2::default().verify_password(b"wrong horse", &parsed).is_err());
        assert!(verify_with(CHEAP, &password, &ours, &scratch).unwrap().matches);
        assert_ne!(hash_with(CHEAP, &password, &scratch).unwrap(), ours, "a fresh salt each time");
    }

    #[test]
    fn the_owasp_parameters_are_the_librarys_default_which_owasp_uses_unchecked() {
        assert_eq!(argon2_for(HashParams::OWASP).unwrap().params(), &Params::DEFAULT);
    }

    #[test]
    fn a_stored_hash_of_another_algorithm_or_larger_memory_verifies_and_asks_for_a_rehash() {
        let scratch = ScratchMemory::new(argon2_for(CHEAP).unwrap().params().block_count());
        let password = Secret::new("correct horse".to_owned());
        let salt = SaltString::encode_b64(&[9; 16]).unwrap();
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x13, Params::new(64, 1, 1, None).unwrap());
        let old = argon2i.hash_password(b"correct horse", &salt).unwrap().to_string();
        assert_eq!(
            verify_with(CHEAP, &password, &old, &scratch).unwrap(),
            Verdict { matches: true, needs_rehash: true }
        );

        let larger = argon2_for(HashParams { memory_kib: 256, ..CHEAP }).unwrap();
        let stronger = larger.hash_password(b"correct horse", &salt).unwrap().to_string();
        assert_eq!(
            verify_with(CHEAP, &password, &stronger, &scratch).unwrap(),
            Verdict { matches: true, needs_rehash: false }
        );

        for corrupt in ["", "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ", "$scrypt$ln=1,r=8,p=1$c2FsdHNhbHQ$aGFzaA"] {
            assert!(
                matches!(verify_with(CHEAP, &password, corrupt, &scratch), Err(HashError::Corrupt(_))),
                "{corrupt}"
            );
        }
    }
}
