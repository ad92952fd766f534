//! What owners and hosts end early: an owner cancels a job under way; a
//! host hands a deal back unfinished (its owner needs the machine).

use alloy_primitives::{Address, B256};
use netmind_protocol::work::Release;

use super::{JobState, Jobs, WorkError, lease};
use crate::engine::Time;

impl Jobs {
    /// Checks that `by` may cancel job `id`: it is the job's owner and the
    /// job is not finished.
    ///
    /// # Errors
    ///
    /// [`WorkError::UnknownJob`], [`WorkError::NotOwner`] or
    /// [`WorkError::Finished`].
    pub fn check_cancel(&self, id: &B256, by: Address) -> Result<(), WorkError> {
        let job = self.jobs.get(id).ok_or(WorkError::UnknownJob(*id))?;
        if job.owner != by {
            return Err(WorkError::NotOwner {
                job: *id,
                owner: job.owner,
                by,
            });
        }
        if job.state.finished() {
            return Err(WorkError::Finished {
                job: *id,
                state: job.state.name(),
            });
        }
        Ok(())
    }

    /// The owner cancels job `id`: it is `cancelled`, its replicas not yet
    /// reported are `cancelled` (their hosts stop them; late receipts are
    /// refused), and nothing more is placed for it.
    ///
    /// # Errors
    ///
    /// As [`Jobs::check_cancel`].
    pub fn cancel(&mut self, id: &B256, by: Address, at: Time) -> Result<(), WorkError> {
        self.check_cancel(id, by)?;
        self.wanting.remove(id);
        self.finish_unless_done(id, JobState::Cancelled, at);
        Ok(())
    }

    /// Bids the market placed for `job` (lapsed or extra replicas).
    pub fn placed_for(&self, job: &B256) -> Vec<B256> {
        self.aliases
            .iter()
            .filter(|(_, j)| *j == job)
            .map(|(bid, _)| *bid)
            .collect()
    }

    /// Checks that the host may hand back `release`'s deal (it holds it,
    /// unreported, in a job under way).
    ///
    /// # Errors
    ///
    /// As [`Jobs::check_start`].
    pub fn release(&mut self, release: &Release) -> Result<(), WorkError> {
        self.deal_mut(release.deal, release.host).map(|_| ())
    }

    /// The bid that places `deal`'s replica again after its host hands it
    /// back, with its job.
    ///
    /// # Errors
    ///
    /// As [`Jobs::check_start`].
    pub fn release_bid(
        &mut self,
        release: &Release,
        now: Time,
    ) -> Result<(B256, crate::engine::Bid), WorkError> {
        let (job, _) = self.deal_mut(release.deal, release.host)?;
        let bid = job
            .bid
            .as_ref()
            .ok_or(WorkError::UnknownDeal(release.deal))?;
        let retry = lease::one_more(job, bid, lease::retry_id(&job.id, &release.deal), now);
        Ok((job.id, retry))
    }
}
