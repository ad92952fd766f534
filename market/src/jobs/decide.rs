//! Replicated verification: the verdict of a job's replicas.

use alloy_primitives::B256;

use super::{DealState, Job, JobResult, JobState};

/// Decides a job once a verdict has more than half of the replicas wanted
/// and reported; asks for one more replica when every replica reported
/// without one, and fails the job once `2 × replicas + 1` reported.
pub(super) fn decide(job: &mut Job) {
    let mut votes: Vec<((B256, String, i32), Vec<usize>)> = Vec::new();
    for (i, d) in job.deals.iter().enumerate() {
        let (Some(output), Some(status), Some(exit)) = (d.output, &d.status, d.exit) else {
            continue;
        };
        let key = (output, status.clone(), exit);
        match votes.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(i),
            None => votes.push((key, vec![i])),
        }
    }
    let reported: usize = votes.iter().map(|(_, v)| v.len()).sum();
    let wanted = (job.replicas + job.extra_replicas) as usize;
    let winner = votes
        .iter()
        .find(|(_, v)| 2 * v.len() > wanted.max(reported));
    let pending = job.deals.iter().any(|d| d.state.open());
    let most = 2 * job.replicas as usize + 1;
    match winner {
        Some(((output, status, exit), agree)) => {
            let agree = agree.clone();
            job.result = Some(JobResult {
                output: *output,
                status: status.clone(),
                exit: *exit,
                hosts: agree.iter().map(|i| job.deals[*i].host).collect(),
            });
            for (i, d) in job.deals.iter_mut().enumerate() {
                if agree.contains(&i) {
                    d.state = DealState::Accepted;
                } else if d.state == DealState::Reported {
                    d.state = DealState::Rejected;
                }
            }
            job.state = JobState::Done;
        }
        None if !pending && reported >= wanted && reported < most => {
            job.state = JobState::Verifying;
            job.wants_extra = true;
        }
        None if !pending && reported >= wanted => {
            job.state = JobState::Failed;
            job.reason = Some(format!(
                "no majority: {reported} replicas reported {} different results \
                 (the most asked for is 2 × replicas + 1 = {most})",
                votes.len()
            ));
            for d in &mut job.deals {
                if d.state == DealState::Reported {
                    d.state = DealState::Rejected;
                }
            }
        }
        None => job.state = JobState::Verifying,
    }
}
